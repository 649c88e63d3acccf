"""ID token issuer and audience checks, and the userinfo merge."""

import pytest
from django.core.exceptions import SuspiciousOperation

from apps.sso.claims import check_id_token_claims, claim_values, merge_claims

ISSUER = "https://idp.example.test"
TOKEN = {"iss": ISSUER, "aud": "nexus", "sub": "s1", "exp": 2_000_000_000}


def test_valid_id_token_passes():
    check_id_token_claims(TOKEN, issuer=ISSUER, client_id="nexus")


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example.test"},
        {"aud": "someone-else"},
        {"aud": ["nexus", "other"]},
        {"aud": ["nexus", "other"], "azp": "other"},
        {"sub": ""},
    ],
)
def test_wrong_id_token_is_rejected(change):
    with pytest.raises(SuspiciousOperation):
        check_id_token_claims({**TOKEN, **change}, issuer=ISSUER, client_id="nexus")


def test_id_token_without_expiry_is_rejected():
    token = {key: value for key, value in TOKEN.items() if key != "exp"}

    with pytest.raises(SuspiciousOperation):
        check_id_token_claims(token, issuer=ISSUER, client_id="nexus")


def test_several_audiences_with_matching_azp_pass():
    token = {**TOKEN, "aud": ["nexus", "other"], "azp": "nexus"}

    check_id_token_claims(token, issuer=ISSUER, client_id="nexus")


def test_userinfo_for_another_subject_is_rejected():
    with pytest.raises(SuspiciousOperation):
        merge_claims(TOKEN, {"sub": "s2", "email": "x@example.test"})


def test_userinfo_cannot_override_id_token_claims():
    merged = merge_claims(
        {**TOKEN, "amr": ["mfa"]},
        {"sub": "s1", "iss": "https://evil.example.test", "amr": [], "groups": ["g"]},
    )

    assert merged["iss"] == ISSUER
    assert merged["amr"] == ["mfa"]
    assert merged["groups"] == ["g"]


def test_claim_values_keeps_strings_only():
    assert claim_values({"groups": ["a", 3, None, "b"]}, "groups") == ["a", "b"]
    assert claim_values({"groups": "a"}, "groups") == ["a"]
    assert claim_values({"groups": {"a": 1}}, "groups") == []
    assert claim_values({}, "groups") == []
