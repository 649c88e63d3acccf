from datetime import timedelta

from django.utils import timezone

from apps.iam.models import ServiceToken
from apps.iam.tokens import (
    authenticate_service_token,
    hash_token,
    issue_service_token,
    revoke_service_token,
)


def test_only_digest_is_stored(org):
    issued = issue_service_token(org, name="ci", scopes=["keys:*"])

    stored = ServiceToken.objects.get(pk=issued.token.pk)
    assert stored.digest == hash_token(issued.plaintext)
    assert issued.plaintext not in (stored.digest, stored.prefix)
    assert issued.plaintext.startswith(stored.prefix)


def test_token_authenticates(org):
    issued = issue_service_token(org, name="ci", scopes=["keys:*"])

    token = authenticate_service_token(issued.plaintext)

    assert token == issued.token
    assert token.last_used_at is not None


def test_wrong_token_is_rejected(org):
    issue_service_token(org, name="ci", scopes=["keys:*"])

    assert authenticate_service_token("nst_wrong") is None
    assert authenticate_service_token("nvk_not_a_service_token") is None


def test_revoked_token_is_rejected(org):
    issued = issue_service_token(org, name="ci", scopes=["keys:*"])
    revoke_service_token(issued.token)

    assert authenticate_service_token(issued.plaintext) is None


def test_expired_token_is_rejected(org):
    past = timezone.now() - timedelta(seconds=1)
    issued = issue_service_token(org, name="ci", scopes=["keys:*"], expires_at=past)

    assert authenticate_service_token(issued.plaintext) is None
