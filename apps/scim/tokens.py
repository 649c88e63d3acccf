"""SCIM tokens: issue, authenticate and revoke.

A token is `nsc_` followed by 256 random bits. Only its HMAC-SHA256 digest is
stored, under the same secret as virtual keys.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from apps.scim.models import ScimToken
from apps.tenancy.models import Organization
from nexus.engine.keys import digest_key, display_prefix

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "nsc_"
# last_used_at is updated only when older than this, so most reads write nothing.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedScimToken:
    """A new token row and its plaintext, which is never available again."""

    token: ScimToken
    plaintext: str


def hash_token(plaintext: str) -> str:
    """Return the stored digest of a plaintext SCIM token."""
    return digest_key(settings.NEXUS_KEY_HASH_SECRET, plaintext)


def issue_scim_token(
    organization: Organization,
    *,
    name: str,
    created_by: AbstractBaseUser | None = None,
) -> IssuedScimToken:
    """Create a SCIM token for the organization; return it with its plaintext."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken.objects.create(
        organization=organization,
        name=name,
        digest=hash_token(plaintext),
        prefix=display_prefix(plaintext),
        created_by=created_by,
    )
    logger.info("SCIM token %s issued", token.pk, extra={"tenant_id": organization.pk})
    return IssuedScimToken(token=token, plaintext=plaintext)


def revoke_scim_token(token: ScimToken) -> None:
    """Revoke the token; repeat calls change nothing."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        logger.info(
            "SCIM token %s revoked",
            token.pk,
            extra={"tenant_id": token.organization_id},
        )


def authenticate_scim_token(plaintext: str) -> ScimToken | None:
    """Return the active token for plaintext, or None; record when it was last used."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = (
        ScimToken.objects.select_related("organization")
        .filter(digest=hash_token(plaintext))
        .first()
    )
    if token is None or not token.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
