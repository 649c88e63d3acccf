"""Write use cases for virtual keys."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.keys.models import VirtualKey
from apps.providers.models import Model
from apps.tenancy.models import Organization, Project
from nexus.engine.keys import digest_key, display_prefix, generate_key


@dataclass(frozen=True)
class IssuedKey:
    """A newly issued key row and its plaintext, which is never available again."""

    key: VirtualKey
    plaintext: str


def hash_key(plaintext: str) -> str:
    """Return the stored digest of a plaintext virtual key."""
    return digest_key(settings.NEXUS_KEY_HASH_SECRET, plaintext)


def check_allowed_models(value: Any, *, stored: Iterable[str] = ()) -> list[str]:
    """Return the allowed model names as a list, or raise ValidationError.

    Each name must be the public name or an alias of a model, because the gateway
    matches a key's allowed models against those by exact name, with no patterns.
    Names in stored, the key's current list, are accepted as they are, so a key
    whose model was removed later can still be edited.
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(name, str) and name for name in value
    ):
        raise ValidationError("Allowed models must be a JSON array of model names.")

    known = set(stored)
    for name, aliases in Model.objects.values_list("name", "aliases"):
        known.add(name)
        known.update(alias for alias in aliases or () if isinstance(alias, str))
    unknown = [name for name in dict.fromkeys(value) if name not in known]
    if unknown:
        raise ValidationError(
            [
                f'Model "{name}" does not exist. Use a model name or alias.'
                for name in unknown
            ]
        )
    return value


def check_expires_at(value: datetime | None, *, stored: datetime | None = None) -> None:
    """Raise ValidationError unless the expiry is empty, unchanged or in the future.

    An unchanged value passes, so an expired key can still be edited without
    giving it a new expiry time.
    """
    if value is None or value == stored:
        return
    if value <= timezone.now():
        raise ValidationError(
            f"Expiry time {value.isoformat()} is not in the future. Send a later "
            "time, or none for a key that does not expire."
        )


def issue_key(
    *,
    organization: Organization,
    name: str,
    project: Project | None = None,
    allowed_models: Iterable[str] = (),
    expires_at: datetime | None = None,
    owner=None,
) -> IssuedKey:
    """Create a key and return it with its plaintext."""
    if project is not None and project.organization_id != organization.pk:
        raise ValueError(
            f"Project {project.pk} does not belong to organization {organization.pk}."
        )
    plaintext = generate_key()
    key = VirtualKey.objects.create(
        organization=organization,
        project=project,
        owner=owner,
        name=name,
        digest=hash_key(plaintext),
        prefix=display_prefix(plaintext),
        allowed_models=list(allowed_models),
        expires_at=expires_at,
    )
    return IssuedKey(key=key, plaintext=plaintext)


def assign_new_secret(key: VirtualKey) -> str:
    """Give an unsaved or existing key row a fresh secret and return the plaintext."""
    plaintext = generate_key()
    key.digest = hash_key(plaintext)
    key.prefix = display_prefix(plaintext)
    return plaintext


@transaction.atomic
def rotate_key(key: VirtualKey) -> IssuedKey:
    """Revoke key and issue a replacement with the same scope and settings."""
    revoke_key(key)
    return issue_key(
        organization=key.organization,
        name=key.name,
        project=key.project,
        allowed_models=key.allowed_models,
        expires_at=key.expires_at,
        owner=key.owner,
    )


def revoke_key(key: VirtualKey) -> None:
    """Revoke the key; repeat calls change nothing."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
