from apps.iam.changelog import MASK, mask, snapshot
from apps.iam.tokens import issue_service_token
from apps.keys.services import issue_key
from apps.providers.models import ProviderConnection
from apps.providers.services import set_credential


def test_key_digest_is_masked(org):
    issued = issue_key(organization=org, name="k")

    data = snapshot(issued.key)

    assert data["digest"] == MASK
    assert issued.key.digest not in str(data)
    assert issued.plaintext not in str(data)
    assert data["prefix"] == issued.key.prefix


def test_token_digest_is_masked(org):
    issued = issue_service_token(org, name="ci", scopes=["keys:*"])

    data = snapshot(issued.token)

    assert data["digest"] == MASK
    assert issued.token.digest not in str(data)


def test_credential_ciphertext_is_masked(db):
    connection = ProviderConnection(name="c", provider_type="openai")
    set_credential(connection, "sk-secret-value")
    connection.save()

    data = snapshot(connection)

    assert data["credential_ciphertext"] == MASK
    assert data["credential_key_id"] == MASK
    assert connection.credential_ciphertext not in str(data)


def test_unset_secret_shows_empty():
    assert mask({"credential": ""}) == {"credential": ""}


def test_nested_secrets_are_masked():
    data = mask({"options": {"api_token": "abc", "region": "eu"}, "password": "pw"})

    assert data == {"options": {"api_token": MASK, "region": "eu"}, "password": MASK}
