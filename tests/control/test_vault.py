"""Provider credentials are sealed with AES-256-GCM under a key ring, bound to their row."""

import base64

import pytest
from django.core.management import call_command
from django.test import override_settings

from apps.providers import vault
from apps.providers.models import ProviderConnection
from apps.providers.services import read_credential, rekey_credentials, set_credential
from nexus.engine.vault import KeyRing, Sealed, VaultError

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


@pytest.fixture
def ring_a():
    with override_settings(NEXUS_VAULT_KEYS=f"a:{KEY_A}", NEXUS_VAULT_ACTIVE_KEY="a"):
        vault.key_ring.cache_clear()
        yield
    vault.key_ring.cache_clear()


def connection(name: str, secret: str) -> ProviderConnection:
    row = ProviderConnection(
        name=name, provider_type="openai", base_url="http://127.0.0.1:9/v1"
    )
    set_credential(row, secret)
    row.save()
    return row


def test_seal_and_open_round_trip():
    ring = KeyRing.parse(f"a:{KEY_A}")

    sealed = ring.seal("sk-secret", "row-1")

    assert sealed.key_id == "a"
    assert "sk-secret" not in sealed.blob
    assert ring.open(sealed, "row-1") == "sk-secret"


def test_ciphertext_bound_to_its_row():
    ring = KeyRing.parse(f"a:{KEY_A}")
    sealed = ring.seal("sk-secret", "row-1")

    with pytest.raises(VaultError, match="failed authentication"):
        ring.open(sealed, "row-2")


def test_altered_ciphertext_rejected():
    ring = KeyRing.parse(f"a:{KEY_A}")
    sealed = ring.seal("sk-secret", "row-1")
    raw = bytearray(base64.b64decode(sealed.blob))
    raw[-1] ^= 1

    with pytest.raises(VaultError):
        ring.open(Sealed("a", base64.b64encode(bytes(raw)).decode()), "row-1")


@pytest.mark.parametrize(
    "spec,message",
    [
        ("", "empty"),
        ("nocolon", "id:base64key"),
        ("a:!!!", "not valid base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "must be 32 bytes"),
    ],
)
def test_malformed_key_ring_rejected(spec, message):
    with pytest.raises(VaultError, match=message):
        KeyRing.parse(spec)


def test_unknown_active_key_rejected():
    with pytest.raises(VaultError, match="not in the key ring"):
        KeyRing.parse(f"a:{KEY_A}", "b")


@pytest.mark.django_db
def test_stored_row_holds_no_plaintext(ring_a):
    row = connection("vault-plain", "sk-very-secret")

    stored = ProviderConnection.objects.get(pk=row.pk)

    assert "sk-very-secret" not in stored.credential_ciphertext
    assert stored.credential_key_id == "a"
    assert read_credential(stored) == "sk-very-secret"


@pytest.mark.django_db
def test_copied_ciphertext_fails_on_other_row(ring_a):
    first = connection("vault-first", "sk-first")
    second = connection("vault-second", "sk-second")

    second.credential_ciphertext = first.credential_ciphertext

    with pytest.raises(VaultError):
        read_credential(second)


@pytest.mark.django_db
def test_rekey_moves_every_row_to_new_key(ring_a):
    rows = [connection(f"vault-rekey-{index}", f"sk-{index}") for index in range(3)]

    with override_settings(
        NEXUS_VAULT_KEYS=f"a:{KEY_A},b:{KEY_B}", NEXUS_VAULT_ACTIVE_KEY="b"
    ):
        vault.key_ring.cache_clear()
        changed = rekey_credentials()
        again = rekey_credentials()
        stored = [ProviderConnection.objects.get(pk=row.pk) for row in rows]
        plaintexts = [read_credential(row) for row in stored]

    assert changed == 3
    assert again == 0
    assert {row.credential_key_id for row in stored} == {"b"}
    assert plaintexts == ["sk-0", "sk-1", "sk-2"]


@pytest.mark.django_db
def test_rekey_command_reports_count(ring_a, capsys):
    connection("vault-command", "sk-command")

    with override_settings(
        NEXUS_VAULT_KEYS=f"a:{KEY_A},b:{KEY_B}", NEXUS_VAULT_ACTIVE_KEY="b"
    ):
        vault.key_ring.cache_clear()
        call_command("rekey_credentials")

    assert "Re-encrypted 1 credential(s)." in capsys.readouterr().out


@pytest.mark.django_db
def test_rekey_reaches_siem_destination_tokens(ring_a):
    from apps.compliance.models import SiemDestination
    from apps.compliance.services import destination_token, set_destination_token

    destination = SiemDestination(name="siem-rekey")
    set_destination_token(destination, "hec-token")
    destination.save()

    with override_settings(
        NEXUS_VAULT_KEYS=f"a:{KEY_A},b:{KEY_B}", NEXUS_VAULT_ACTIVE_KEY="b"
    ):
        vault.key_ring.cache_clear()
        rekey_credentials()
        stored = SiemDestination.objects.get(pk=destination.pk)
        token = destination_token(stored)

    assert stored.token_key_id == "b"
    assert token == "hec-token"


@pytest.mark.django_db
def test_rekey_without_old_key_gives_command_error(ring_a):
    from django.core.management.base import CommandError

    connection("vault-missing-key", "sk-x")

    with override_settings(NEXUS_VAULT_KEYS=f"b:{KEY_B}", NEXUS_VAULT_ACTIVE_KEY="b"):
        vault.key_ring.cache_clear()
        with pytest.raises(CommandError, match="Keep the old key"):
            call_command("rekey_credentials")
