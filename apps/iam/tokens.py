"""Service tokens: issue, authenticate and revoke.

A token is `nst_` followed by 256 random bits. Only its HMAC-SHA256 digest is stored
(under the same secret as virtual keys), and its scopes can never exceed what the
person creating it holds.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.iam.context import AccessContext
from apps.iam.errors import InvalidScopeError
from apps.iam.escalation import ensure_can_grant
from apps.iam.evaluator import Actor
from apps.iam.models import ServiceToken
from apps.iam.permissions import expand
from apps.tenancy.models import Organization
from nexus.engine.keys import digest_key

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "nst_"
DISPLAY_LENGTH = 12
# last_used_at is written at most once per interval so reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A new token row and its plaintext, which is never available again."""

    token: ServiceToken
    plaintext: str


def hash_token(plaintext: str) -> str:
    """Return the stored digest of a plaintext service token."""
    return digest_key(settings.NEXUS_KEY_HASH_SECRET, plaintext)


def validate_scopes(scopes: object) -> frozenset[str]:
    """Raise InvalidScopeError unless scopes is a list of permission globs; expand it."""
    if not isinstance(scopes, list) or not scopes:
        raise InvalidScopeError(
            "Token scopes must be a non-empty list.", param="scopes"
        )
    covered: set[str] = set()
    for scope in scopes:
        matched = expand(scope) if isinstance(scope, str) else frozenset()
        if not matched:
            raise InvalidScopeError(
                f'Token scope "{scope}" matches no permission in the catalog.',
                param="scopes",
            )
        covered |= matched
    return frozenset(covered)


def issue_service_token(
    organization: Organization,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> IssuedToken:
    """Create a token whose scopes the actor holds; return it with its plaintext."""
    covered = validate_scopes(scopes)
    ensure_can_grant(actor, organization, covered, context=context)

    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    creator = (
        actor if actor is not None and not isinstance(actor, ServiceToken) else None
    )
    token = ServiceToken.objects.create(
        organization=organization,
        name=name,
        scopes=list(scopes),
        digest=hash_token(plaintext),
        prefix=plaintext[:DISPLAY_LENGTH],
        created_by=creator,
        expires_at=expires_at,
    )
    logger.info(
        "service token %s issued", token.pk, extra={"tenant_id": organization.pk}
    )
    return IssuedToken(token=token, plaintext=plaintext)


def revoke_service_token(token: ServiceToken) -> None:
    """Revoke the token; repeat calls change nothing."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        logger.info(
            "service token %s revoked",
            token.pk,
            extra={"tenant_id": token.organization_id},
        )


def authenticate_service_token(plaintext: str) -> ServiceToken | None:
    """Return the active token for plaintext, or None; record when it was last used."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = (
        ServiceToken.objects.select_related("organization")
        .filter(digest=hash_token(plaintext))
        .first()
    )
    if token is None or not token.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
