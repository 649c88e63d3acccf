"""Every endpoint with every built-in role: allowed (2xx), denied (403), other org (404).

The members hold their role in `world.org` (the project admin on `world.project`);
the outsider owns another organization.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.providers.models import Model, ProviderConnection
from tests.api.conftest import ROLES, client_for
from tests.iam.factories import make_user, unique

OWNER, ADMIN, PROJECT_ADMIN, DEVELOPER, AUDITOR, VIEWER = ROLES
MANAGERS = {OWNER, ADMIN}
READERS = {OWNER, ADMIN, DEVELOPER, VIEWER}
KEY_READERS = READERS | {PROJECT_ADMIN}
PLATFORM_READERS = {OWNER, ADMIN, PROJECT_ADMIN, DEVELOPER, VIEWER}
IAM_READERS = {OWNER, ADMIN, VIEWER}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable
    allowed: frozenset
    body: Callable | None = None
    # Status for a member of another organization; platform rows are shared.
    outsider: int | str = 404


def row(name: str, suffix: str = "") -> Callable:
    return lambda world: f"{world.rows[name].pk}/{suffix}"


def org_query(world) -> str:
    return f"?organization={world.org.slug}"


def org_connection(world) -> ProviderConnection:
    """Return a connection that world.org owns, created on first use."""
    if "org_connection" not in world.rows:
        world.rows["org_connection"] = ProviderConnection.objects.create(
            organization=world.org,
            name=unique("own"),
            provider_type="openai",
            base_url="http://127.0.0.1:9/v1",
        )
    return world.rows["org_connection"]


def org_model(world) -> Model:
    """Return a model on world.org's own connection, created on first use."""
    if "org_model" not in world.rows:
        world.rows["org_model"] = Model.objects.create(
            name=unique("own-model"),
            connection=org_connection(world),
            upstream_model="gpt-test",
        )
    return world.rows["org_model"]


def case(name, method, path, allowed, body=None, outsider=404) -> Case:
    return Case(name, method, path, frozenset(allowed), body, outsider)


CASES = [
    case("orgs.list", "get", lambda w: f"orgs/{org_query(w)}", READERS),
    case("orgs.retrieve", "get", lambda w: f"orgs/{w.org.slug}/", READERS),
    case(
        "orgs.update",
        "patch",
        lambda w: f"orgs/{w.org.slug}/",
        MANAGERS,
        lambda w: {"name": "Renamed"},
    ),
    case("orgs.delete", "delete", lambda w: f"orgs/{w.org.slug}/", {OWNER}),
    case(
        "orgs.create",
        "post",
        lambda w: "orgs/",
        set(),
        lambda w: {"name": unique("new")},
        403,
    ),
    case(
        "projects.list",
        "get",
        lambda w: f"projects/{org_query(w)}",
        READERS | {PROJECT_ADMIN},
    ),
    case(
        "projects.retrieve",
        "get",
        lambda w: f"projects/{w.project.pk}/",
        READERS | {PROJECT_ADMIN},
    ),
    case(
        "projects.create",
        "post",
        lambda w: "projects/",
        MANAGERS,
        lambda w: {"organization": w.org.slug, "name": unique("p")},
    ),
    case(
        "projects.update",
        "patch",
        lambda w: f"projects/{w.project.pk}/",
        MANAGERS | {PROJECT_ADMIN},
        lambda w: {"name": "renamed"},
    ),
    case("projects.delete", "delete", lambda w: f"projects/{w.project.pk}/", MANAGERS),
    case("keys.list", "get", lambda w: f"keys/{org_query(w)}", KEY_READERS),
    case(
        "keys.retrieve", "get", lambda w: f"keys/{row('key_project')(w)}", KEY_READERS
    ),
    case(
        "keys.retrieve_org_level", "get", lambda w: f"keys/{row('key_org')(w)}", READERS
    ),
    case(
        "keys.create_org_level",
        "post",
        lambda w: "keys/",
        MANAGERS | {DEVELOPER},
        lambda w: {"organization": w.org.slug, "name": "new"},
    ),
    case(
        "keys.create_in_project",
        "post",
        lambda w: "keys/",
        MANAGERS | {DEVELOPER, PROJECT_ADMIN},
        lambda w: {"organization": w.org.slug, "project": w.project.pk, "name": "new"},
    ),
    case(
        "keys.update",
        "patch",
        lambda w: f"keys/{row('key_project')(w)}",
        MANAGERS | {PROJECT_ADMIN},
        lambda w: {"name": "renamed"},
    ),
    case(
        "keys.rotate",
        "post",
        lambda w: f"keys/{row('key_project', 'rotate/')(w)}",
        MANAGERS | {PROJECT_ADMIN, DEVELOPER},
    ),
    case(
        "keys.revoke",
        "post",
        lambda w: f"keys/{row('key_project', 'revoke/')(w)}",
        MANAGERS | {PROJECT_ADMIN, DEVELOPER},
    ),
    case(
        "keys.delete",
        "delete",
        lambda w: f"keys/{row('key_project')(w)}",
        MANAGERS | {PROJECT_ADMIN},
    ),
    case(
        "connections.list",
        "get",
        lambda w: "provider-connections/",
        PLATFORM_READERS,
        outsider=200,
    ),
    case(
        "connections.retrieve",
        "get",
        lambda w: f"provider-connections/{row('connection')(w)}",
        PLATFORM_READERS,
        outsider=200,
    ),
    case(
        "connections.create",
        "post",
        lambda w: "provider-connections/",
        set(),
        lambda w: {
            "name": unique("c"),
            "provider_type": "openai",
            "credential": "sk-1",
        },
        403,
    ),
    case(
        "connections.update",
        "patch",
        lambda w: f"provider-connections/{row('connection')(w)}",
        set(),
        lambda w: {"credential": "sk-2"},
        403,
    ),
    case(
        "connections.delete",
        "delete",
        lambda w: f"provider-connections/{row('spare_connection')(w)}",
        set(),
        outsider=403,
    ),
    case("models.list", "get", lambda w: "models/", PLATFORM_READERS, outsider=200),
    case(
        "models.retrieve",
        "get",
        lambda w: f"models/{row('model')(w)}",
        PLATFORM_READERS,
        outsider=200,
    ),
    case(
        "models.create",
        "post",
        lambda w: "models/",
        set(),
        lambda w: {
            "name": unique("m"),
            "connection": w.rows["connection"].pk,
            "upstream_model": "x",
        },
        403,
    ),
    case(
        "models.update",
        "patch",
        lambda w: f"models/{row('model')(w)}",
        set(),
        lambda w: {"input_price": "2.5"},
        403,
    ),
    case(
        "models.delete",
        "delete",
        lambda w: f"models/{row('model')(w)}",
        set(),
        outsider=403,
    ),
    case(
        "connections.list_org",
        "get",
        lambda w: f"provider-connections/{org_query(w)}",
        PLATFORM_READERS,
    ),
    case(
        "connections.retrieve_org",
        "get",
        lambda w: f"provider-connections/{org_connection(w).pk}/",
        READERS,
    ),
    case(
        "connections.create_in_org",
        "post",
        lambda w: "provider-connections/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "name": unique("c"),
            "provider_type": "openai",
            "credential": "sk-1",
        },
    ),
    case(
        "connections.update_org",
        "patch",
        lambda w: f"provider-connections/{org_connection(w).pk}/",
        MANAGERS,
        lambda w: {"credential": "sk-2"},
    ),
    case(
        "connections.delete_org",
        "delete",
        lambda w: f"provider-connections/{org_connection(w).pk}/",
        MANAGERS,
    ),
    case(
        "models.retrieve_org",
        "get",
        lambda w: f"models/{org_model(w).pk}/",
        READERS,
    ),
    case(
        "models.create_in_org",
        "post",
        lambda w: "models/",
        MANAGERS,
        lambda w: {
            "name": unique("m"),
            "connection": org_connection(w).pk,
            "upstream_model": "x",
        },
        # Another organization's connection is reported as missing.
        400,
    ),
    case(
        "models.update_org",
        "patch",
        lambda w: f"models/{org_model(w).pk}/",
        MANAGERS,
        lambda w: {"input_price": "2.5"},
    ),
    case(
        "models.delete_org",
        "delete",
        lambda w: f"models/{org_model(w).pk}/",
        MANAGERS,
    ),
    case(
        "audit_events.list",
        "get",
        lambda w: f"audit-events/{org_query(w)}",
        MANAGERS | {PROJECT_ADMIN, AUDITOR},
    ),
    case(
        "audit_events.retrieve",
        "get",
        lambda w: f"audit-events/{row('event')(w)}",
        MANAGERS | {PROJECT_ADMIN, AUDITOR},
    ),
    case(
        "admin_log.list",
        "get",
        lambda w: f"admin-audit-log/{org_query(w)}",
        MANAGERS | {AUDITOR},
    ),
    case(
        "admin_log.retrieve",
        "get",
        lambda w: f"admin-audit-log/{row('log')(w)}",
        MANAGERS | {AUDITOR},
    ),
    case("users.list", "get", lambda w: f"users/{org_query(w)}", IAM_READERS),
    case("users.retrieve", "get", lambda w: f"users/{row('target')(w)}", IAM_READERS),
    case(
        "memberships.list", "get", lambda w: f"memberships/{org_query(w)}", IAM_READERS
    ),
    case(
        "memberships.retrieve",
        "get",
        lambda w: f"memberships/{row('membership')(w)}",
        IAM_READERS,
    ),
    case(
        "memberships.create",
        "post",
        lambda w: "memberships/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "user": make_user().pk,
            "role": "viewer",
        },
    ),
    case(
        "memberships.delete",
        "delete",
        lambda w: f"memberships/{row('membership')(w)}",
        MANAGERS,
    ),
    case("groups.list", "get", lambda w: f"groups/{org_query(w)}", IAM_READERS),
    case("groups.retrieve", "get", lambda w: f"groups/{row('group')(w)}", IAM_READERS),
    case(
        "groups.create",
        "post",
        lambda w: "groups/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "name": unique("g"),
            "roles": [{"role": "viewer"}],
        },
    ),
    case(
        "groups.update",
        "patch",
        lambda w: f"groups/{row('group')(w)}",
        MANAGERS,
        lambda w: {"members": [w.rows["target"].pk]},
    ),
    case("groups.delete", "delete", lambda w: f"groups/{row('group')(w)}", MANAGERS),
    case("policies.list", "get", lambda w: f"policies/{org_query(w)}", IAM_READERS),
    case(
        "policies.retrieve",
        "get",
        lambda w: f"policies/{row('policy')(w)}",
        IAM_READERS,
    ),
    case(
        "policies.create",
        "post",
        lambda w: "policies/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "name": unique("p"),
            "effect": "deny",
            "principals": ["role:viewer"],
            "actions": ["keys:key.read"],
            "resources": [f"nrn:nexus:keys:{w.org.slug}:key/*"],
            "conditions": {"mfa": False},
        },
    ),
    case(
        "policies.update",
        "patch",
        lambda w: f"policies/{row('policy')(w)}",
        MANAGERS,
        lambda w: {"description": "changed"},
    ),
    case(
        "policies.delete", "delete", lambda w: f"policies/{row('policy')(w)}", MANAGERS
    ),
    case("tokens.list", "get", lambda w: f"service-tokens/{org_query(w)}", MANAGERS),
    case(
        "tokens.retrieve",
        "get",
        lambda w: f"service-tokens/{row('token')(w)}",
        MANAGERS,
    ),
    case(
        "tokens.create",
        "post",
        lambda w: "service-tokens/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "name": "deploy",
            "scopes": ["keys:key.read"],
        },
    ),
    case(
        "tokens.revoke",
        "post",
        lambda w: f"service-tokens/{row('token', 'revoke/')(w)}",
        MANAGERS,
    ),
    case("user_tags.list", "get", lambda w: f"user-tags/{org_query(w)}", IAM_READERS),
    case(
        "user_tags.retrieve",
        "get",
        lambda w: f"user-tags/{row('user_tags')(w)}",
        IAM_READERS,
    ),
    case(
        "user_tags.create",
        "post",
        lambda w: "user-tags/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "user": w.members[DEVELOPER].pk,
            "tags": {"a": "b"},
        },
    ),
    case(
        "user_tags.update",
        "patch",
        lambda w: f"user-tags/{row('user_tags')(w)}",
        MANAGERS,
        lambda w: {"tags": {"team": "b"}},
    ),
    case(
        "user_tags.delete",
        "delete",
        lambda w: f"user-tags/{row('user_tags')(w)}",
        MANAGERS,
    ),
    case(
        "resource_tags.list",
        "get",
        lambda w: f"resource-tags/{org_query(w)}",
        IAM_READERS,
    ),
    case(
        "resource_tags.retrieve",
        "get",
        lambda w: f"resource-tags/{row('resource_tags')(w)}",
        IAM_READERS,
    ),
    case(
        "resource_tags.create",
        "post",
        lambda w: "resource-tags/",
        MANAGERS,
        lambda w: {
            "organization": w.org.slug,
            "resource": f"nrn:nexus:keys:{w.org.slug}:key/{w.rows['key_org'].pk}",
            "tags": {"env": "prod"},
        },
    ),
    case(
        "resource_tags.update",
        "patch",
        lambda w: f"resource-tags/{row('resource_tags')(w)}",
        MANAGERS,
        lambda w: {"tags": {"env": "prod"}},
    ),
    case(
        "resource_tags.delete",
        "delete",
        lambda w: f"resource-tags/{row('resource_tags')(w)}",
        MANAGERS,
    ),
]


def call(client, world, item: Case):
    body = item.body(world) if item.body else None
    return getattr(client, item.method)(
        f"/api/v1/{item.path(world)}", body, format="json"
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("item", CASES, ids=lambda item: item.name)
def test_role_matrix(world, item, role):
    response = call(client_for(world.members[role]), world, item)

    if role in item.allowed:
        assert 200 <= response.status_code < 300, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("item", CASES, ids=lambda item: item.name)
def test_other_org_member(world, item):
    response = call(client_for(world.members["outsider"]), world, item)

    if item.outsider == 200:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == item.outsider, response.content


@pytest.mark.parametrize("item", CASES, ids=lambda item: item.name)
def test_superuser_allowed_everywhere(world, item):
    response = call(client_for(world.members["superuser"]), world, item)

    assert 200 <= response.status_code < 300, response.content


@pytest.mark.parametrize("item", CASES, ids=lambda item: item.name)
def test_anonymous_is_unauthenticated(world, item):
    response = call(APIClient(), world, item)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
