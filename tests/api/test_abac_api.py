"""Policy conditions evaluated on real API requests."""

from datetime import UTC, datetime, timedelta

from apps.iam.context import SESSION_CLAIMS_KEY
from apps.iam.policies import create_policy, set_resource_tags, set_user_tags
from tests.api.conftest import client_for


def keys_policy(
    world, effect, conditions, principals=("role:developer",), actions=("keys:*",)
):
    return create_policy(
        world.org,
        {
            "name": f"{effect} {sorted(conditions)}",
            "effect": effect,
            "principals": list(principals),
            "actions": list(actions),
            "resources": [f"nrn:nexus:keys:{world.org.slug}*"],
            "conditions": conditions,
        },
    )


def mfa_client(user, methods):
    client = client_for(user)
    session = client.session
    session[SESSION_CLAIMS_KEY] = {"amr": methods}
    session.save()
    return client


def key_url(world):
    return f"/api/v1/keys/{world.rows['key_org'].pk}/"


def test_office_network_allows(world):
    keys_policy(world, "deny", {"source_ip_not_in": ["10.0.0.0/8"]})

    response = client_for(world.members["developer"]).get(
        key_url(world), REMOTE_ADDR="10.9.8.7"
    )

    assert response.status_code == 200


def test_outside_network_is_denied(world):
    keys_policy(world, "deny", {"source_ip_not_in": ["10.0.0.0/8"]})

    response = client_for(world.members["developer"]).get(
        key_url(world), REMOTE_ADDR="198.51.100.7"
    )

    assert response.status_code == 403
    assert "denied by policy" in response.json()["error"]["message"]


def test_mfa_session_creates_key(world):
    keys_policy(world, "deny", {"mfa": False}, actions=("keys:key.create",))

    response = mfa_client(world.members["developer"], ["pwd", "mfa"]).post(
        "/api/v1/keys/", {"organization": world.org.slug, "name": "x"}, format="json"
    )

    assert response.status_code == 201


def test_session_without_mfa_is_denied(world):
    keys_policy(world, "deny", {"mfa": False}, actions=("keys:key.create",))

    response = mfa_client(world.members["developer"], ["pwd"]).post(
        "/api/v1/keys/", {"organization": world.org.slug, "name": "x"}, format="json"
    )

    assert response.status_code == 403


def window(offset_hours):
    start = datetime.now(UTC) + timedelta(hours=offset_hours)
    return {
        "start": start.strftime("%H:%M"),
        "end": (start + timedelta(hours=2)).strftime("%H:%M"),
    }


def test_inside_time_window_allows(world):
    keys_policy(
        world,
        "allow",
        {"utc_time_in": window(-1)},
        principals=("role:auditor",),
        actions=("keys:key.read",),
    )

    response = client_for(world.members["auditor"]).get(key_url(world))

    assert response.status_code == 200


def test_outside_time_window_is_denied(world):
    keys_policy(
        world,
        "allow",
        {"utc_time_in": window(3)},
        principals=("role:auditor",),
        actions=("keys:key.read",),
    )

    response = client_for(world.members["auditor"]).get(key_url(world))

    assert response.status_code == 403


def test_tagged_key_is_listed_for_tagged_user(world):
    keys_policy(
        world,
        "allow",
        {"resource_tags": {"env": "dev"}, "user_tags": {"team": "qa"}},
        principals=("role:auditor",),
        actions=("keys:key.read",),
    )
    set_resource_tags(
        world.org,
        f"nrn:nexus:keys:{world.org.slug}:key/{world.rows['key_org'].pk}",
        {"env": "dev"},
    )
    set_user_tags(world.members["auditor"], world.org, {"team": "qa"})

    response = client_for(world.members["auditor"]).get("/api/v1/keys/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [
        world.rows["key_org"].pk
    ]


def test_untagged_user_lists_nothing(world):
    keys_policy(
        world,
        "allow",
        {"resource_tags": {"env": "dev"}, "user_tags": {"team": "qa"}},
        principals=("role:auditor",),
        actions=("keys:key.read",),
    )
    set_resource_tags(
        world.org,
        f"nrn:nexus:keys:{world.org.slug}:key/{world.rows['key_org'].pk}",
        {"env": "dev"},
    )

    listed = client_for(world.members["auditor"]).get("/api/v1/keys/")
    fetched = client_for(world.members["auditor"]).get(key_url(world))

    assert listed.json()["results"] == []
    assert fetched.status_code == 403


def test_deny_on_tagged_key_hides_it_from_list(world):
    keys_policy(world, "deny", {"resource_tags": {"env": "prod"}})
    set_resource_tags(
        world.org,
        f"nrn:nexus:keys:{world.org.slug}:key/{world.rows['key_org'].pk}",
        {"env": "prod"},
    )

    response = client_for(world.members["developer"]).get("/api/v1/keys/")

    assert [row["id"] for row in response.json()["results"]] == [
        world.rows["key_project"].pk
    ]
