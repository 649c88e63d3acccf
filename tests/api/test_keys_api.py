from apps.keys.models import VirtualKey
from apps.keys.services import hash_key
from tests.api.conftest import client_for
from tests.iam.factories import make_member, make_user


def test_create_returns_plaintext_once(world):
    client = client_for(world.members["developer"])

    created = client.post(
        "/api/v1/keys/", {"organization": world.org.slug, "name": "app"}, format="json"
    )
    fetched = client.get(f"/api/v1/keys/{created.json()['id']}/")

    assert created.status_code == 201
    plaintext = created.json()["key"]
    assert plaintext.startswith("nvk_")
    assert VirtualKey.objects.get(pk=created.json()["id"]).digest == hash_key(plaintext)
    assert "key" not in fetched.json()
    assert plaintext not in fetched.content.decode()
    assert fetched.json()["prefix"] == plaintext[:12]


def test_list_shows_prefix_only(world):
    client = client_for(world.members["viewer"])

    response = client.get(f"/api/v1/keys/?organization={world.org.slug}")

    rows = response.json()["results"]
    assert {row["id"] for row in rows} == {
        world.rows["key_project"].pk,
        world.rows["key_org"].pk,
    }
    for row in rows:
        assert set(row) >= {"prefix", "name"}
        assert "digest" not in row
        assert "key" not in row


def test_project_admin_lists_only_project_keys(world):
    client = client_for(world.members["project_admin"])

    response = client.get("/api/v1/keys/")

    assert [row["id"] for row in response.json()["results"]] == [
        world.rows["key_project"].pk
    ]


def test_rotate_revokes_old_and_returns_new(world):
    client = client_for(world.members["developer"])
    old = world.rows["key_project"]

    response = client.post(f"/api/v1/keys/{old.pk}/rotate/")

    assert response.status_code == 201
    body = response.json()
    assert body["id"] != old.pk
    assert body["project"] == world.project.pk
    assert VirtualKey.objects.get(pk=body["id"]).digest == hash_key(body["key"])
    old.refresh_from_db()
    assert old.revoked_at is not None


def test_revoke_is_idempotent(world):
    client = client_for(world.members["developer"])
    key = world.rows["key_org"]

    first = client.post(f"/api/v1/keys/{key.pk}/revoke/")
    second = client.post(f"/api/v1/keys/{key.pk}/revoke/")

    assert first.status_code == 200
    assert first.json()["is_active"] is False
    assert second.json()["revoked_at"] == first.json()["revoked_at"]


def test_project_of_other_org_is_not_found(world):
    client = client_for(world.members["org_owner"])
    foreign = world.other_org.projects.create(name="x", slug="x")

    response = client.post(
        "/api/v1/keys/",
        {"organization": world.org.slug, "project": foreign.pk, "name": "app"},
        format="json",
    )

    assert response.status_code == 404


def test_owner_must_be_member(world):
    client = client_for(world.members["org_owner"])

    response = client.post(
        "/api/v1/keys/",
        {"organization": world.org.slug, "name": "app", "owner": make_user().pk},
        format="json",
    )

    assert response.status_code == 400
    assert "owner" in response.json()["error"]["details"]


def test_organization_cannot_change(world):
    make_member(world.other_org, "org_owner")
    client = client_for(world.members["org_owner"])
    key = world.rows["key_org"]

    response = client.patch(
        f"/api/v1/keys/{key.pk}/", {"organization": world.other_org.slug}, format="json"
    )

    assert response.status_code == 400
    key.refresh_from_db()
    assert key.organization == world.org


def test_filter_by_revoked(world):
    client = client_for(world.members["org_owner"])
    client.post(f"/api/v1/keys/{world.rows['key_org'].pk}/revoke/")

    response = client.get("/api/v1/keys/?revoked=true")

    assert [row["id"] for row in response.json()["results"]] == [
        world.rows["key_org"].pk
    ]


def test_limit_offset_pagination(world):
    client = client_for(world.members["org_owner"])

    first = client.get("/api/v1/keys/?limit=1")
    second = client.get("/api/v1/keys/?limit=1&offset=1")

    assert first.json()["count"] == 2
    assert len(first.json()["results"]) == 1
    assert first.json()["results"][0]["id"] != second.json()["results"][0]["id"]


def test_org_slug_cannot_change(world):
    client = client_for(world.members["org_owner"])

    response = client.patch(
        f"/api/v1/orgs/{world.org.slug}/", {"slug": "renamed"}, format="json"
    )

    assert response.status_code == 400
    assert "slug" in response.json()["error"]["details"]
