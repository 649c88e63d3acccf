"""Usability of the REST API: naming organizations, finding audit events by request id,
rejecting unknown query parameters, and JSON responses for unknown paths."""

from datetime import UTC, datetime

import pytest
import yaml
from django.test import override_settings
from rest_framework.test import APIClient

from apps.api.urls import PLAIN_VIEWS, router
from apps.audit.models import AuditEvent
from apps.iam.models import Membership
from apps.routing.models import Route
from tests.api.conftest import client_for
from tests.iam.factories import make_org, unique
from tests.support.factories import make_connection, make_model


def event_in(organization) -> AuditEvent:
    return AuditEvent.objects.create(
        request_id=f"req_{unique('x').replace('-', '')}",
        created_at=datetime.now(UTC),
        organization=organization,
        ingress="openai_chat",
        status_code=200,
    )


def ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def assert_not_found(response, message: str | None = None) -> None:
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "not_found"
    if message is not None:
        assert error["message"] == message


@pytest.fixture
def owner(world) -> APIClient:
    return client_for(world.members["org_owner"])


@pytest.fixture
def root(world) -> APIClient:
    return client_for(world.members["superuser"])


def test_token_created_with_numeric_organization(world, owner):
    body = {"organization": world.org.pk, "name": "ci", "scopes": ["keys:key.read"]}

    response = owner.post("/api/v1/service-tokens/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == world.org.slug


def test_key_created_with_organization_id_string(world, owner):
    body = {"organization": str(world.org.pk), "name": "by-id"}

    response = owner.post("/api/v1/keys/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == world.org.slug


@pytest.mark.parametrize("value", ["no-such-org", "999999999", "99999999999999999999"])
def test_unknown_organization_message_names_value(world, owner, value):
    body = {"organization": value, "name": "ci", "scopes": ["keys:key.read"]}

    response = owner.post("/api/v1/service-tokens/", body, format="json")

    assert_not_found(response, f'No organization with slug or id "{value}".')


def test_foreign_organization_id_is_not_found(world, owner):
    body = {
        "organization": world.other_org.pk,
        "name": "ci",
        "scopes": ["keys:key.read"],
    }

    created = owner.post("/api/v1/service-tokens/", body, format="json")
    listed = owner.get("/api/v1/keys/", {"organization": world.other_org.pk})

    assert_not_found(created)
    assert_not_found(listed)


def test_slug_wins_over_id(world):
    # An organization whose slug is another organization's id is found by slug.
    member = world.members["org_owner"]
    digits = make_org(str(world.org.pk))
    Membership.objects.create(user=member, organization=digits, role="org_owner")
    body = {
        "organization": str(world.org.pk),
        "name": "ci",
        "scopes": ["keys:key.read"],
    }

    response = client_for(member).post("/api/v1/service-tokens/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == digits.slug


def test_update_accepts_same_organization_by_id(world, owner):
    key = world.rows["key_org"]

    response = owner.patch(
        f"/api/v1/keys/{key.pk}/", {"organization": world.org.pk}, format="json"
    )

    assert response.status_code == 200, response.content


def test_list_filter_takes_id(world, owner):
    by_slug = owner.get("/api/v1/keys/", {"organization": world.org.slug})
    by_id = owner.get("/api/v1/keys/", {"organization": world.org.pk})

    assert by_id.status_code == 200
    assert ids(by_id) == ids(by_slug)
    assert ids(by_id)


@pytest.mark.parametrize("by", ["slug", "pk"])
def test_superuser_list_limited_to_organization(world, root, by):
    response = root.get("/api/v1/projects/", {"organization": getattr(world.org, by)})

    assert response.status_code == 200
    assert {row["organization"] for row in response.json()["results"]} == {
        world.org.slug
    }


def test_superuser_filter_applies_without_filter_set(world, root):
    # The user tags list has no filter set of its own. Only world.org has a row.
    own = root.get("/api/v1/user-tags/", {"organization": world.org.pk})
    other = root.get("/api/v1/user-tags/", {"organization": world.other_org.slug})

    assert ids(own) == {world.rows["user_tags"].pk}
    assert ids(other) == set()


def test_superuser_unfiltered_list_spans_organizations(world, root):
    event_in(world.other_org)

    response = root.get("/api/v1/audit-events/")

    assert {row["organization"] for row in response.json()["results"]} == {
        world.org.slug,
        world.other_org.slug,
    }


@pytest.fixture
def route_model(db):
    connection = make_connection("openai", "http://127.0.0.1:9/v1")
    return make_model(connection, unique("gpt"))


@pytest.fixture
def routes(world, route_model) -> dict[int, Route]:
    """One route in each organization of the world, by organization id."""
    return {
        organization.pk: Route.objects.create(
            name=unique("route"),
            model=route_model.name,
            organization=organization,
            config=route_model.name,
        )
        for organization in (world.org, world.other_org)
    }


@pytest.mark.parametrize("by", ["slug", "pk"])
def test_route_filter_takes_slug_or_id(world, root, routes, by):
    response = root.get("/api/v1/routes/", {"organization": getattr(world.org, by)})

    assert response.status_code == 200
    assert ids(response) == {routes[world.org.pk].pk}


def test_route_created_with_organization_slug(world, root, route_model):
    body = {
        "name": unique("route"),
        "model": route_model.name,
        "config": route_model.name,
        "organization": world.org.slug,
    }

    response = root.post("/api/v1/routes/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == world.org.pk


def test_route_filter_unknown_organization(world, root, routes):
    response = root.get("/api/v1/routes/", {"organization": "no-such-org"})

    assert response.status_code == 400
    assert response.json()["error"]["details"]["organization"] == [
        'No organization with slug or id "no-such-org".'
    ]


def test_audit_events_filter_by_request_id(world, owner):
    expected, _ = event_in(world.org), event_in(world.org)

    response = owner.get("/api/v1/audit-events/", {"request_id": expected.request_id})

    assert response.status_code == 200
    assert ids(response) == {expected.pk}


def test_audit_event_found_by_request_id(world, owner):
    event = event_in(world.org)

    by_request_id = owner.get(f"/api/v1/audit-events/{event.request_id}/")
    by_pk = owner.get(f"/api/v1/audit-events/{event.pk}/")

    assert by_request_id.status_code == 200
    assert by_request_id.json()["id"] == event.pk
    assert by_pk.json()["request_id"] == event.request_id


def test_foreign_request_id_is_not_found(world, owner):
    foreign = event_in(world.other_org)

    detail = owner.get(f"/api/v1/audit-events/{foreign.request_id}/")
    listed = owner.get("/api/v1/audit-events/", {"request_id": foreign.request_id})

    assert_not_found(detail)
    assert ids(listed) == set()


@pytest.mark.parametrize("value", ["req_missing", "req_%00", "req_" + "a" * 80])
def test_unknown_request_id_is_not_found(world, owner, value):
    response = owner.get(f"/api/v1/audit-events/{value}/")

    assert_not_found(response)


def test_misspelt_filter_is_rejected(world, owner):
    response = owner.get("/api/v1/audit-events/", {"status_code": 429})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["details"]) == ["status_code"]
    assert "status" in accepted(response, "status_code")
    assert "request_id" in accepted(response, "status_code")


def test_every_unknown_parameter_is_named(world, owner):
    response = owner.get("/api/v1/keys/", {"b": 1, "a": 2, "revoked": "false"})

    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["a", "b"]


def accepted(response, name: str) -> set[str]:
    message = response.json()["error"]["details"][name][0]
    return set(message.split("accepts: ", 1)[1].rstrip(".").split(", "))


LIST_PREFIXES = [prefix for prefix, _, _ in router.registry]


@pytest.fixture(scope="module")
def list_parameters(django_db_blocker) -> dict[str, set[str]]:
    """Return the documented query parameters of each list route, by prefix."""
    with django_db_blocker.unblock():
        document = yaml.safe_load(APIClient().get("/api/schema/").content)
    return {
        prefix: {
            parameter["name"]
            for parameter in document["paths"][f"/api/v1/{prefix}/"]["get"].get(
                "parameters", []
            )
            if parameter["in"] == "query"
        }
        for prefix in LIST_PREFIXES
    }


@pytest.mark.parametrize("prefix", LIST_PREFIXES)
def test_list_accepts_exactly_documented_parameters(
    world, root, list_parameters, prefix
):
    response = root.get(f"/api/v1/{prefix}/", {"bogus": 1})

    assert response.status_code == 400
    assert accepted(response, "bogus") == list_parameters[prefix] | {"format"}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/keys/", {"format": "json"}),
        ("/api/v1/keys/", {"limit": 1, "offset": 0, "revoked": "false"}),
        ("/api/v1/audit-events/", {"limit": 1, "status": 200, "model": "m"}),
        ("/api/v1/usage-rollups/", {"hour__gte": "2026-01-01T00:00:00Z"}),
    ],
)
def test_known_parameters_are_accepted(world, owner, path, query):
    response = owner.get(path, query)

    assert response.status_code == 200, response.content


def test_organization_accepted_on_every_scoped_list(world, owner):
    response = owner.get("/api/v1/hooks/", {"organization": world.org.pk})

    assert response.status_code == 200, response.content


def test_detail_route_ignores_query_parameters(world, owner):
    response = owner.get(f"/api/v1/keys/{world.rows['key_org'].pk}/", {"bogus": 1})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/organizations/", "/api/nope/", "/api/v1/keys/1/nope/"]
)
def test_unknown_api_path_is_json_not_found(world, owner, path):
    response = owner.get(path)

    assert_not_found(response, f'No API endpoint matches the path "{path}".')
    assert response["X-Request-ID"]


@override_settings(DEBUG=True)
def test_unknown_path_is_json_in_debug(db):
    response = APIClient().post("/api/v1/organizations/", {}, format="json")

    assert_not_found(response)


def test_path_without_slash_redirects(world, owner):
    response = owner.get("/api/v1/keys", {"limit": 1})

    assert response.status_code == 301
    assert response["Location"] == "/api/v1/keys/?limit=1"


def test_unknown_path_without_slash_is_not_found(world, owner):
    response = owner.get("/api/v1/organizations")

    assert_not_found(response)


def test_root_lists_every_resource(world, owner, list_parameters):
    document = yaml.safe_load(owner.get("/api/schema/").content)
    collections = {
        path.removeprefix("/api/v1/").rstrip("/")
        for path in document["paths"]
        if path.count("/") == 4 and "{" not in path
    }

    response = owner.get("/api/v1/")

    assert response.status_code == 200
    assert set(response.json()) == collections
    assert set(PLAIN_VIEWS) <= collections
    assert {"hooks", "quotas", "kill-switches", "routes", "roles"} <= collections
    assert response.json()["orgs"] == "http://testserver/api/v1/orgs/"


def test_organizations_are_listed_under_orgs(world, owner):
    response = owner.get("/api/v1/orgs/")

    assert response.status_code == 200
    assert {row["slug"] for row in response.json()["results"]} == {world.org.slug}
