"""Routes with a NUL character in a JSON field get a 400 field error, never a 500."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.routing.models import Route
from tests.support.factories import make_connection, make_model, unique

URL = "/api/v1/routes/"
NUL = "a\x00b"
NUL_MESSAGE = "Null characters are not allowed."


@pytest.fixture
def model(db):
    connection = make_connection("openai", "http://127.0.0.1:9/v1")
    return make_model(connection, "gpt-4o")


@pytest.fixture
def root(db) -> APIClient:
    user = get_user_model().objects.create_superuser(
        username=unique("root"), password=None
    )
    client = APIClient()
    client.force_login(user)
    return client


def conditional(model, when: dict) -> dict:
    return {
        "strategy": "conditional",
        "rules": [{"when": when, "then": model.name}],
        "default": model.name,
    }


def route_body(model, **fields) -> dict:
    body = {"name": unique("route"), "model": model.name, "config": model.name}
    body.update(fields)
    return body


CASES = {
    "header_value": ("match_headers", {"x-tier": NUL}),
    "header_name": ("match_headers", {NUL: "gold"}),
    "metadata_value": ("match_metadata", {"team": NUL}),
    "metadata_nested": ("match_metadata", {"team": {"names": ["x", NUL]}}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nul_in_matcher_is_field_error(root, model, case):
    field, value = CASES[case]

    response = root.post(URL, route_body(model, **{field: value}), format="json")

    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details[field] == [NUL_MESSAGE]
    assert not Route.objects.exists()


def test_nul_in_conditional_rule_is_field_error(root, model):
    config = conditional(model, {"header.x-tier": {"eq": NUL}})

    response = root.post(URL, route_body(model, config=config), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"]["config"] == [NUL_MESSAGE]
    assert not Route.objects.exists()


def test_same_route_without_nul_is_created(root, model):
    config = conditional(model, {"header.x-tier": {"eq": "gold"}})
    body = route_body(
        model,
        config=config,
        match_headers={"x-tier": "gold"},
        match_metadata={"team": "search"},
    )

    response = root.post(URL, body, format="json")

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field", ["match_headers", "match_metadata", "config"])
def test_nul_on_update_is_field_error(root, model, field):
    created = root.post(URL, route_body(model), format="json").json()
    values = {
        "match_headers": {"x-tier": NUL},
        "match_metadata": {"team": NUL},
        "config": conditional(model, {"metadata.team": NUL}),
    }

    response = root.patch(
        f"{URL}{created['id']}/", {field: values[field]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["details"][field] == [NUL_MESSAGE]
    stored = Route.objects.get(pk=created["id"])
    assert stored.match_headers == {}
    assert stored.config == model.name


def test_nul_in_description_is_field_error(root, model):
    response = root.post(URL, route_body(model, description=NUL), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"]["description"] == [NUL_MESSAGE]
