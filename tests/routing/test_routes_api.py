"""The routes REST API: superusers manage routes, configs are validated, health is readable."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.iam.models import AdminAuditLog, Membership
from apps.routing.models import Route
from tests.support.factories import make_connection, make_model, make_org, unique

URL = "/api/v1/routes/"


@pytest.fixture
def models(db):
    connection = make_connection("openai", "http://127.0.0.1:9/v1")
    return make_model(connection, "gpt-4o"), make_model(connection, "gpt-4o-mini")


@pytest.fixture
def root(db) -> APIClient:
    user = get_user_model().objects.create_superuser(
        username=unique("root"), password="unused-password-1"
    )
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def org_owner(db) -> APIClient:
    user = get_user_model().objects.create_user(
        username=unique("owner"), password="unused-password-1"
    )
    Membership.objects.create(user=user, organization=make_org(), role="org_owner")
    client = APIClient()
    client.force_login(user)
    return client


def body(models, **fields) -> dict:
    primary, backup = models
    data = {
        "name": unique("route"),
        "model": primary.name,
        "config": {"strategy": "fallback", "targets": [primary.name, backup.name]},
        "retries": 1,
        "failover_statuses": [404],
    }
    data.update(fields)
    return data


def test_superuser_creates_and_lists_routes(root, models):
    created = root.post(URL, body(models), format="json")

    assert created.status_code == 201, created.content
    listed = root.get(URL)
    assert listed.status_code == 200
    names = [row["name"] for row in listed.json()["results"]]
    assert created.json()["name"] in names
    assert AdminAuditLog.objects.filter(action="routing:route.create").exists()


@pytest.mark.parametrize(
    ("config", "field_message"),
    [
        ({"strategy": "fallback", "targets": []}, "non-empty list"),
        (
            {"strategy": "loadbalance", "targets": [{"model": "gpt", "weight": 0}]},
            "positive",
        ),
        ({"strategy": "fallback", "targets": ["no-such-model"]}, "does not exist"),
    ],
)
def test_invalid_config_is_rejected_with_400(root, models, config, field_message):
    response = root.post(URL, body(models, config=config), format="json")

    assert response.status_code == 400
    assert field_message in str(response.json())
    assert not Route.objects.exists()


def test_cycle_is_rejected_on_update(root, models):
    primary, backup = models
    first = root.post(URL, body(models), format="json").json()
    second = root.post(
        URL,
        body(models, model=backup.name, config={"route": first["name"]}),
        format="json",
    ).json()

    response = root.patch(
        f"{URL}{first['id']}/", {"config": {"route": second["name"]}}, format="json"
    )

    assert response.status_code == 400
    assert "cycle" in str(response.json())


def test_update_and_delete(root, models):
    created = root.post(URL, body(models), format="json").json()

    updated = root.patch(
        f"{URL}{created['id']}/", {"timeout_seconds": 12.5}, format="json"
    )
    deleted = root.delete(f"{URL}{created['id']}/")

    assert updated.status_code == 200
    assert updated.json()["timeout_seconds"] == 12.5
    assert deleted.status_code == 204
    assert not Route.objects.filter(pk=created["id"]).exists()


def test_health_endpoint_lists_targets(root, models):
    created = root.post(URL, body(models), format="json").json()

    response = root.get(f"{URL}{created['id']}/health/")

    assert response.status_code == 200
    data = response.json()
    assert data["strategy"] == "fallback"
    assert [row["model"] for row in data["targets"]] == sorted(m.name for m in models)
    assert {row["state"] for row in data["targets"]} == {"closed"}


def test_org_members_are_forbidden(root, org_owner, models):
    created = root.post(URL, body(models), format="json").json()

    assert org_owner.get(f"{URL}{created['id']}/").status_code == 403
    assert org_owner.post(URL, body(models), format="json").status_code == 403
    assert org_owner.delete(f"{URL}{created['id']}/").status_code == 403
    assert Route.objects.filter(pk=created["id"]).exists()


def test_anonymous_is_unauthenticated(models):
    assert APIClient().get(URL).status_code == 401


@pytest.mark.parametrize(
    ("route_org", "status"),
    [("owner", 201), ("other", 400), (None, 201)],
    ids=["owners_route", "other_orgs_route", "route_for_every_org"],
)
def test_route_owned_model_scope(root, models, route_org, status):
    owner, other = make_org(), make_org()
    owned = make_model(
        make_connection("openai", "http://127.0.0.1:9/v1", organization=owner),
        unique("owned"),
    )
    primary, _ = models
    orgs = {"owner": owner.pk, "other": other.pk, None: None}
    config = {"strategy": "fallback", "targets": [primary.name, owned.name]}

    response = root.post(
        URL, body(models, config=config, organization=orgs[route_org]), format="json"
    )

    assert response.status_code == status, response.content
    if status == 400:
        assert "belongs to another organization" in str(response.json())
