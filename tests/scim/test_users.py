"""SCIM Users: create, read, replace and delete, mirrored onto Nexus users."""

from django.contrib.auth import get_user_model

from apps.iam.models import AdminAuditLog
from apps.iam.services import grant_role
from apps.scim.models import ScimUser
from tests.iam.factories import make_org, make_user
from tests.scim.conftest import user_body


def test_create_user_mirrors_attributes(scim, org):
    body = user_body(
        "ann@example.test",
        externalId="ext-1",
        name={"givenName": "Ann", "familyName": "Lee"},
        emails=[
            {"value": "home@example.test", "type": "home"},
            {"value": "ann@example.test", "type": "work", "primary": True},
        ],
        password="ignored-secret",
    )

    response = scim.post("/Users", body)

    created = response.json()
    assert response.status_code == 201
    assert response.headers["Location"] == created["meta"]["location"]
    assert created["userName"] == "ann@example.test"
    assert created["externalId"] == "ext-1"
    assert "password" not in created
    user = get_user_model().objects.get(username="ann@example.test")
    assert (user.first_name, user.last_name) == ("Ann", "Lee")
    assert user.email == "ann@example.test"
    assert user.is_active
    assert not user.has_usable_password()
    assert ScimUser.objects.get(user=user).organization == org
    assert AdminAuditLog.objects.filter(action="scim:user.create").count() == 1


def test_get_returns_what_was_sent(scim):
    body = user_body(
        "bo@example.test",
        displayName="Bo",
        name={"givenName": "Bo", "familyName": "Ek", "formatted": "Bo Ek"},
        emails=[{"value": "bo@example.test", "type": "work", "primary": True}],
    )
    created = scim.post("/Users", body).json()

    fetched = scim.get(f"/Users/{created['id']}").json()

    for key in ("userName", "displayName", "name", "emails"):
        assert fetched[key] == body[key]
    assert fetched["meta"]["resourceType"] == "User"


def test_duplicate_user_name_is_a_conflict(scim):
    scim.post("/Users", user_body("dup@example.test"))

    response = scim.post("/Users", user_body("DUP@example.test"))

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_missing_user_name_is_invalid(scim):
    response = scim.post("/Users", {"schemas": [], "displayName": "nobody"})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_existing_unlinked_user_is_adopted(scim, org):
    existing = make_user("joined-by-sso@example.test")

    response = scim.post("/Users", user_body("joined-by-sso@example.test"))

    assert response.status_code == 201
    assert ScimUser.objects.get(scim_id=response.json()["id"]).user == existing


def test_user_of_another_org_is_not_adopted(scim):
    existing = make_user("busy@example.test")
    grant_role(existing, make_org(), "viewer")

    response = scim.post("/Users", user_body("busy@example.test"))

    assert response.status_code == 409


def test_superuser_is_not_adopted(scim):
    make_user("root@example.test", is_superuser=True)

    response = scim.post("/Users", user_body("root@example.test"))

    assert response.status_code == 409


def test_put_replaces_every_attribute(scim):
    created = scim.post(
        "/Users", user_body("cy@example.test", displayName="Cy", externalId="e1")
    ).json()

    response = scim.put(f"/Users/{created['id']}", user_body("cy2@example.test"))

    replaced = response.json()
    assert response.status_code == 200
    assert replaced["userName"] == "cy2@example.test"
    assert "displayName" not in replaced
    assert "externalId" not in replaced
    assert get_user_model().objects.filter(username="cy2@example.test").exists()


def test_unknown_or_malformed_id_is_not_found(scim):
    assert scim.get("/Users/00000000-0000-0000-0000-000000000000").status_code == 404
    response = scim.get("/Users/not-a-uuid")

    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_delete_removes_resource_and_deactivates(scim):
    created = scim.post("/Users", user_body("dee@example.test")).json()

    response = scim.delete(f"/Users/{created['id']}")

    assert response.status_code == 204
    assert scim.get(f"/Users/{created['id']}").status_code == 404
    user = get_user_model().objects.get(username="dee@example.test")
    assert not user.is_active


def test_attributes_parameter_limits_the_response(scim):
    created = scim.post(
        "/Users", user_body("eve@example.test", displayName="Eve", externalId="x")
    ).json()

    only = scim.get(f"/Users/{created['id']}", attributes="displayName").json()
    without = scim.get(
        f"/Users/{created['id']}", excludedAttributes="displayName,meta"
    ).json()

    assert set(only) == {"schemas", "id", "meta", "displayName"}
    assert "displayName" not in without
    assert "meta" in without
    assert without["userName"] == "eve@example.test"


def test_nul_character_is_invalid(scim):
    response = scim.post("/Users", user_body("nul\x00@example.test"))
    filtered = scim.get("/Users", filter='userName eq "a\x00b"')

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert filtered.status_code == 400
