"""Write use cases for provider connections and their credentials."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from apps.providers.models import ProviderConnection
from apps.providers.vault import key_ring

logger = logging.getLogger(__name__)


def set_credential(connection: ProviderConnection, plaintext: str) -> None:
    """Encrypt plaintext under the active key into the connection (not saved)."""
    if not plaintext:
        connection.credential_ciphertext = ""
        connection.credential_key_id = ""
        return
    sealed = key_ring().seal(plaintext, connection.credential_associated_data)
    connection.credential_ciphertext = sealed.blob
    connection.credential_key_id = sealed.key_id


def read_credential(connection: ProviderConnection) -> str:
    """Return the decrypted credential, or an empty string when none is set."""
    sealed = connection.sealed_credential
    if sealed is None:
        return ""
    return key_ring().open(sealed, connection.credential_associated_data)


@dataclass(frozen=True)
class SealedSecrets:
    """A kind of row that keeps a secret sealed with the vault's key ring."""

    label: str
    rows: Callable[[], QuerySet]
    key_id: Callable[[Any], str]
    read: Callable[[Any], str]
    write: Callable[[Any, str], None]
    update_fields: tuple[str, ...]


# Every kind of sealed secret, so re-keying reaches all of them; apps add theirs in ready().
SEALED_SECRETS: list[SealedSecrets] = [
    SealedSecrets(
        label="provider connection",
        rows=lambda: ProviderConnection.objects.exclude(credential_ciphertext=""),
        key_id=lambda row: row.credential_key_id,
        read=read_credential,
        write=set_credential,
        update_fields=("credential_ciphertext", "credential_key_id", "updated_at"),
    )
]


def rekey_credentials() -> int:
    """Re-encrypt every sealed secret under the active key; return how many changed.

    Idempotent: rows already under the active key are skipped. Raises VaultError
    when a row is sealed under a key that is no longer in the ring.
    """
    ring = key_ring()
    changed = 0
    with transaction.atomic():
        for kind in SEALED_SECRETS:
            for row in kind.rows().select_for_update():
                if kind.key_id(row) == ring.active:
                    continue
                kind.write(row, kind.read(row))
                row.save(update_fields=list(kind.update_fields))
                changed += 1
    logger.info("re-encrypted %s sealed secrets under key %s", changed, ring.active)
    return changed
