from datetime import timedelta

from django.utils import timezone

from apps.iam.models import AdminAuditLog
from apps.iam.tokens import issue_service_token, revoke_service_token
from tests.api.conftest import client_for, token_client


def test_token_reads_within_scope(world):
    issued = issue_service_token(world.org, name="ci", scopes=["keys:key.read"])

    response = token_client(issued.plaintext).get("/api/v1/keys/")

    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_token_outside_scope_is_forbidden(world):
    issued = issue_service_token(world.org, name="ci", scopes=["keys:key.read"])

    response = token_client(issued.plaintext).post(
        "/api/v1/keys/", {"organization": world.org.slug, "name": "x"}, format="json"
    )

    assert response.status_code == 403


def test_token_with_create_scope_creates(world):
    issued = issue_service_token(world.org, name="ci", scopes=["keys:key.create"])

    response = token_client(issued.plaintext).post(
        "/api/v1/keys/", {"name": "from-ci"}, format="json"
    )

    assert response.status_code == 201
    entry = AdminAuditLog.objects.get(action="keys:key.create")
    assert entry.actor_token_id == issued.token.pk
    assert entry.actor == f"token:{issued.token.prefix}"


def test_token_cannot_see_other_org(world):
    issued = issue_service_token(world.other_org, name="ci", scopes=["keys:*"])

    listed = token_client(issued.plaintext).get(
        f"/api/v1/keys/?organization={world.org.slug}"
    )
    fetched = token_client(issued.plaintext).get(
        f"/api/v1/keys/{world.rows['key_org'].pk}/"
    )

    assert listed.status_code == 404
    assert fetched.status_code == 404


def test_revoked_token_is_unauthenticated(world):
    issued = issue_service_token(world.org, name="ci", scopes=["keys:*"])
    revoke_service_token(issued.token)

    response = token_client(issued.plaintext).get("/api/v1/keys/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_expired_token_is_unauthenticated(world):
    past = timezone.now() - timedelta(seconds=1)
    issued = issue_service_token(
        world.org, name="ci", scopes=["keys:*"], expires_at=past
    )

    response = token_client(issued.plaintext).get("/api/v1/keys/")

    assert response.status_code == 401


def test_malformed_bearer_is_unauthenticated(world):
    response = token_client("nvk_virtual_key_is_not_a_token").get("/api/v1/keys/")

    assert response.status_code == 401


def test_token_created_over_api_is_shown_once(world):
    client = client_for(world.members["org_admin"])

    created = client.post(
        "/api/v1/service-tokens/",
        {"organization": world.org.slug, "name": "deploy", "scopes": ["keys:*"]},
        format="json",
    )
    listed = client.get("/api/v1/service-tokens/")

    plaintext = created.json()["token"]
    assert plaintext.startswith("nst_")
    assert plaintext not in listed.content.decode()
    assert token_client(plaintext).get("/api/v1/keys/").status_code == 200


def test_token_scopes_beyond_creator_are_rejected(world):
    client = client_for(world.members["org_admin"])

    response = client.post(
        "/api/v1/service-tokens/",
        {
            "organization": world.org.slug,
            "name": "root",
            "scopes": ["tenancy:organization.delete"],
        },
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "privilege_escalation"


def test_revoke_over_api_stops_token(world):
    issued = issue_service_token(world.org, name="ci", scopes=["keys:*"])
    client = client_for(world.members["org_owner"])

    client.post(f"/api/v1/service-tokens/{issued.token.pk}/revoke/")

    assert token_client(issued.plaintext).get("/api/v1/keys/").status_code == 401


def test_me_describes_token(world):
    issued = issue_service_token(world.org, name="ci", scopes=["keys:key.read"])

    response = token_client(issued.plaintext).get("/api/v1/me/")

    assert response.json()["kind"] == "service_token"
    assert response.json()["scopes"] == ["keys:key.read"]
