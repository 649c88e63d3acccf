from apps.iam.models import Membership
from tests.api.conftest import client_for


def grant(world, role, actor="org_admin", **extra):
    body = {
        "organization": world.org.slug,
        "user": world.rows["target"].pk,
        "role": role,
        **extra,
    }
    return client_for(world.members[actor]).post(
        "/api/v1/memberships/", body, format="json"
    )


def test_admin_cannot_grant_owner(world):
    response = grant(world, "org_owner")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "privilege_escalation"
    assert not Membership.objects.filter(
        user=world.rows["target"], role="org_owner"
    ).exists()


def test_owner_can_grant_owner(world):
    response = grant(world, "org_owner", actor="org_owner")

    assert response.status_code == 201
    assert response.json()["source"] == "manual"


def test_admin_cannot_revoke_owner(world):
    owner_grant = Membership.objects.get(
        user=world.members["org_owner"], role="org_owner"
    )

    response = client_for(world.members["org_admin"]).delete(
        f"/api/v1/memberships/{owner_grant.pk}/"
    )

    assert response.status_code == 403
    assert Membership.objects.filter(pk=owner_grant.pk).exists()


def test_last_owner_cannot_leave(world):
    owner_grant = Membership.objects.get(
        user=world.members["org_owner"], role="org_owner"
    )

    response = client_for(world.members["org_owner"]).delete(
        f"/api/v1/memberships/{owner_grant.pk}/"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"


def test_project_role_needs_project(world):
    response = grant(world, "project_admin")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_role"


def test_admin_cannot_make_owner_group(world):
    response = client_for(world.members["org_admin"]).post(
        "/api/v1/groups/",
        {
            "organization": world.org.slug,
            "name": "owners",
            "roles": [{"role": "org_owner"}],
        },
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "privilege_escalation"


def test_admin_cannot_write_broad_policy(world):
    response = client_for(world.members["org_admin"]).post(
        "/api/v1/policies/",
        {
            "organization": world.org.slug,
            "name": "everything",
            "effect": "allow",
            "principals": ["*"],
            "actions": ["*"],
            "resources": ["nrn:nexus:*"],
        },
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "privilege_escalation"


def test_invalid_policy_is_bad_request(world):
    response = client_for(world.members["org_owner"]).post(
        "/api/v1/policies/",
        {
            "organization": world.org.slug,
            "name": "bad",
            "effect": "allow",
            "principals": ["*"],
            "actions": ["keys:*"],
            "resources": ["nrn:nexus:*"],
            "conditions": {"source_ip_in": ["not-an-ip"]},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_policy"


def test_group_members_get_group_roles(world):
    owner = client_for(world.members["org_owner"])
    target = world.rows["target"]
    created = owner.post(
        "/api/v1/groups/",
        {
            "organization": world.org.slug,
            "name": "ops",
            "roles": [{"role": "project_admin", "project": world.project.pk}],
            "members": [target.pk],
        },
        format="json",
    )

    response = client_for(target).patch(
        f"/api/v1/projects/{world.project.pk}/", {"name": "by-group"}, format="json"
    )

    assert created.status_code == 201, created.content
    assert created.json()["roles"] == [
        {"role": "project_admin", "project": world.project.pk}
    ]
    assert response.status_code == 200


def test_me_lists_roles(world):
    response = client_for(world.members["project_admin"]).get("/api/v1/me/")

    organizations = response.json()["organizations"]
    assert organizations == [
        {
            "organization": world.org.slug,
            "roles": [
                {
                    "role": "project_admin",
                    "project": world.project.pk,
                    "source": "manual",
                    "group": None,
                }
            ],
        }
    ]


def test_role_catalog_is_listed(world):
    response = client_for(world.members["viewer"]).get("/api/v1/roles/")

    auditor = next(role for role in response.json() if role["name"] == "auditor")
    assert auditor["permissions"] == [
        "audit:adminlog.read",
        "audit:event.read",
        "compliance:body_capture.read",
        "compliance:control_event.read",
        "compliance:stage_record.read",
    ]


def test_superuser_creates_org_with_owner(world):
    client = client_for(world.members["superuser"])
    owner = world.rows["target"]

    response = client.post(
        "/api/v1/orgs/", {"name": "Acme Labs", "owner": owner.pk}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["slug"] == "acme-labs"
    assert Membership.objects.filter(
        user=owner, organization__slug="acme-labs", role="org_owner"
    ).exists()
