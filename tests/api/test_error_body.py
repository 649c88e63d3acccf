import re

from rest_framework.test import APIClient

from tests.api.conftest import client_for


def assert_error_shape(response, status, code):
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_validation_error_shape(world):
    response = client_for(world.members["org_owner"]).post(
        "/api/v1/keys/", {"organization": world.org.slug}, format="json"
    )

    assert_error_shape(response, 400, "invalid")
    assert "name" in response.json()["error"]["details"]


def test_unauthenticated_shape(world):
    response = APIClient().get("/api/v1/keys/")

    assert_error_shape(response, 401, "not_authenticated")


def test_forbidden_shape_names_permission(world):
    response = client_for(world.members["viewer"]).delete(
        f"/api/v1/keys/{world.rows['key_org'].pk}/"
    )

    assert_error_shape(response, 403, "permission_denied")
    assert "keys:key.delete" in response.json()["error"]["message"]


def test_not_found_shape(world):
    response = client_for(world.members["viewer"]).get("/api/v1/keys/999999999/")

    assert_error_shape(response, 404, "not_found")


def test_method_not_allowed_shape(world):
    response = client_for(world.members["org_owner"]).put(
        f"/api/v1/memberships/{world.rows['membership'].pk}/", {}, format="json"
    )

    assert_error_shape(response, 405, "method_not_allowed")


def test_name_clash_is_conflict(world):
    client = client_for(world.members["org_owner"])
    body = {"organization": world.org.slug, "name": "dup", "slug": "dup"}
    client.post("/api/v1/projects/", body, format="json")

    response = client.post("/api/v1/projects/", body, format="json")

    assert_error_shape(response, 409, "conflict")


def test_escalation_shape(world):
    response = client_for(world.members["org_admin"]).post(
        "/api/v1/memberships/",
        {
            "organization": world.org.slug,
            "user": world.rows["target"].pk,
            "role": "org_owner",
        },
        format="json",
    )

    assert_error_shape(response, 403, "privilege_escalation")


def test_request_id_is_echoed(world):
    response = client_for(world.members["viewer"]).get(
        "/api/v1/keys/", HTTP_X_REQUEST_ID="req-abc.123"
    )

    assert response["X-Request-ID"] == "req-abc.123"


def test_request_id_is_generated(world):
    response = client_for(world.members["viewer"]).get(
        "/api/v1/keys/", HTTP_X_REQUEST_ID="bad id\n"
    )

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_error_has_request_id(world):
    response = APIClient().get("/api/v1/keys/", HTTP_X_REQUEST_ID="req-err")

    assert response.status_code == 401
    assert response["X-Request-ID"] == "req-err"
