"""The admin creates SCIM tokens, shows each once and revokes them."""

import pytest

from apps.iam.models import AdminAuditLog
from apps.scim.models import ScimToken
from apps.scim.tokens import hash_token
from tests.iam.factories import make_member
from tests.scim.conftest import ScimClient


def test_added_token_is_shown_once_and_works(org, admin_client):
    response = admin_client.post(
        "/admin/scim/scimtoken/add/", {"organization": org.pk, "name": "Okta"}
    )

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    plaintext = response.context["plaintext"]
    assert plaintext in response.text
    token = ScimToken.objects.get(name="Okta")
    assert token.digest == hash_token(plaintext)
    assert (
        plaintext
        not in admin_client.get(f"/admin/scim/scimtoken/{token.pk}/change/").text
    )
    assert ScimClient(plaintext).get("/Users").status_code == 200
    assert AdminAuditLog.objects.filter(action="scim:token.create").exists()


def test_revoke_action_disables_token(org, admin_client):
    admin_client.post(
        "/admin/scim/scimtoken/add/", {"organization": org.pk, "name": "t"}
    )
    token = ScimToken.objects.get(name="t")

    admin_client.post(
        "/admin/scim/scimtoken/",
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AdminAuditLog.objects.filter(action="scim:token.revoke").exists()


@pytest.mark.parametrize("role", ["org_owner", "org_admin"])
def test_org_members_cannot_manage_tokens(org, client, role):
    client.force_login(make_member(org, role, is_staff=True))

    assert client.get("/admin/scim/scimtoken/").status_code == 403
    assert client.get("/admin/scim/scimtoken/add/").status_code == 403
