"""Malformed request bodies and paths get a 4xx error body, never a server error."""

import pytest

from apps.tenancy.models import Project
from tests.api.conftest import client_for

NUL = "a\x00b"


@pytest.fixture
def owner(world):
    return client_for(world.members["org_owner"])


@pytest.fixture
def superuser(world):
    return client_for(world.members["superuser"])


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize("body", ["[null, null]", '"text"', "5", "null"])
@pytest.mark.parametrize("path", ["/api/v1/keys/", "/api/v1/memberships/"])
def test_non_object_body_is_invalid(owner, path, body):
    response = owner.post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert error_code(response) == "invalid"
    assert "Expected a dictionary" in str(response.json()["error"]["details"])


@pytest.mark.parametrize("slug", [NUL, "no slug", "a/b"])
def test_malformed_organization_is_not_found(owner, slug):
    response = owner.post(
        "/api/v1/keys/", {"organization": slug, "name": "k"}, format="json"
    )

    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("project", ["²", "1\x00", "99999999999999999999", "-1"])
def test_malformed_project_is_not_found(owner, world, project):
    body = {"organization": world.org.slug, "project": project, "name": "k"}

    response = owner.post("/api/v1/keys/", body, format="json")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_nul_organization_path_is_not_found(owner):
    response = owner.get("/api/v1/orgs/a%00b/")

    assert response.status_code == 404


@pytest.mark.parametrize("slug", [NUL, "no slug"])
def test_malformed_organization_on_update_is_invalid(owner, world, slug):
    group = world.rows["group"]

    response = owner.patch(
        f"/api/v1/groups/{group.pk}/", {"organization": slug}, format="json"
    )

    assert response.status_code == 400
    assert "organization" in response.json()["error"]["details"]


def test_project_name_without_slug_is_invalid(owner, world):
    body = {"organization": world.org.slug, "name": ", "}

    response = owner.post("/api/v1/projects/", body, format="json")

    assert response.status_code == 400
    assert "slug" in response.json()["error"]["details"]
    assert not Project.objects.filter(organization=world.org, slug="").exists()


def test_project_name_without_slug_takes_given(owner, world):
    body = {"organization": world.org.slug, "name": ", ", "slug": "punctuation"}

    response = owner.post("/api/v1/projects/", body, format="json")

    assert response.status_code == 201
    assert response.json()["slug"] == "punctuation"


def test_organization_name_without_slug_is_invalid(superuser):
    response = superuser.post("/api/v1/orgs/", {"name": "?!"}, format="json")

    assert response.status_code == 400
    assert "slug" in response.json()["error"]["details"]


def nul_requests(world) -> dict[str, tuple[str, dict]]:
    """Create requests with a NUL character inside a JSON field, by case name."""
    org = world.org.slug
    policy = {
        "organization": org,
        "name": "p",
        "effect": "allow",
        "principals": ["*"],
        "actions": ["keys:key.read"],
        "resources": ["nrn:nexus:keys:*"],
    }
    user = world.rows["target"].pk
    resource = f"nrn:nexus:keys:{world.org.slug}:key/1"
    connection = {
        "name": "nul-options",
        "provider_type": "openai",
        "base_url": "http://127.0.0.1:9/v1",
    }
    model = {
        "name": "nul-alias",
        "connection": world.rows["connection"].pk,
        "upstream_model": "gpt-test",
    }
    return {
        "allowed_models": (
            "/api/v1/keys/",
            {"organization": org, "name": "k", "allowed_models": [NUL]},
        ),
        "tag_value": (
            "/api/v1/user-tags/",
            {"organization": org, "user": user, "tags": {"team": NUL}},
        ),
        "tag_name": (
            "/api/v1/user-tags/",
            {"organization": org, "user": user, "tags": {NUL: "a"}},
        ),
        "resource_tag": (
            "/api/v1/resource-tags/",
            {"organization": org, "resource": resource, "tags": {"env": NUL}},
        ),
        "condition": (
            "/api/v1/policies/",
            {**policy, "conditions": {"user_tags": {"team": NUL}}},
        ),
        "connection_options": (
            "/api/v1/provider-connections/",
            {**connection, "options": {"note": NUL}},
        ),
        "model_aliases": ("/api/v1/models/", {**model, "aliases": [NUL]}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "allowed_models",
        "tag_value",
        "tag_name",
        "resource_tag",
        "condition",
        "connection_options",
        "model_aliases",
    ],
)
def test_nul_in_json_field_is_invalid(world, superuser, case):
    path, body = nul_requests(world)[case]

    response = superuser.post(path, body, format="json")

    assert response.status_code == 400
    assert "Null characters are not allowed." in str(response.json()["error"])
