"""SCIM bearer tokens: authentication, organization scoping and storage."""

from django.test import Client

from apps.scim.models import ScimToken, ScimUser
from apps.scim.tokens import hash_token, issue_scim_token, revoke_scim_token
from tests.scim.conftest import SCIM, ScimClient, user_body


def test_missing_token_is_rejected(db):
    response = Client().get(f"{SCIM}/Users")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["status"] == "401"


def test_unknown_token_is_rejected(db):
    response = ScimClient("nsc_not-a-real-token").get("/Users")

    assert response.status_code == 401


def test_revoked_token_is_rejected(org):
    issued = issue_scim_token(org, name="old")
    revoke_scim_token(issued.token)

    response = ScimClient(issued.plaintext).get("/Users")

    assert response.status_code == 401


def test_only_the_digest_is_stored(org):
    issued = issue_scim_token(org, name="idp")

    row = ScimToken.objects.get(pk=issued.token.pk)
    assert row.digest == hash_token(issued.plaintext)
    assert issued.plaintext not in (row.digest, row.prefix)
    assert issued.plaintext.startswith(row.prefix)


def test_use_is_recorded(org):
    issued = issue_scim_token(org, name="idp")

    ScimClient(issued.plaintext).get("/Users")

    assert ScimToken.objects.get(pk=issued.token.pk).last_used_at is not None


def test_other_org_user_is_not_found(scim, other_scim):
    created = other_scim.post("/Users", user_body("hidden@example.test")).json()

    single = scim.get(f"/Users/{created['id']}")
    listed = scim.get("/Users").json()
    filtered = scim.get("/Users", filter='userName eq "hidden@example.test"').json()
    patched = scim.patch(
        f"/Users/{created['id']}", [{"op": "replace", "path": "active", "value": False}]
    )
    deleted = scim.delete(f"/Users/{created['id']}")

    assert single.status_code == 404
    assert listed["totalResults"] == 0
    assert filtered["totalResults"] == 0
    assert patched.status_code == 404
    assert deleted.status_code == 404
    assert other_scim.get(f"/Users/{created['id']}").status_code == 200
    assert ScimUser.objects.get(scim_id=created["id"]).user.is_active


def test_other_org_group_is_not_found(scim, other_scim):
    created = other_scim.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "x",
        },
    ).json()

    assert scim.get(f"/Groups/{created['id']}").status_code == 404
    assert scim.delete(f"/Groups/{created['id']}").status_code == 404
    assert scim.get("/Groups").json()["totalResults"] == 0
