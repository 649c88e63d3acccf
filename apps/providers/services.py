"""Write use cases for provider connections and their credentials."""

import logging

from django.db import transaction

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


def rekey_credentials() -> int:
    """Re-encrypt every stored credential under the active key; return how many changed.

    Idempotent: rows already under the active key are skipped.
    """
    ring = key_ring()
    changed = 0
    with transaction.atomic():
        for connection in ProviderConnection.objects.select_for_update().exclude(
            credential_ciphertext=""
        ):
            if connection.credential_key_id == ring.active:
                continue
            plaintext = read_credential(connection)
            set_credential(connection, plaintext)
            connection.save(
                update_fields=[
                    "credential_ciphertext",
                    "credential_key_id",
                    "updated_at",
                ]
            )
            changed += 1
    logger.info(
        "re-encrypted %s provider credentials under key %s", changed, ring.active
    )
    return changed
