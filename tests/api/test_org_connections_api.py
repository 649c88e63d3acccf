"""Organization admins manage their own connections and models, not others' or shared ones."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.providers.models import Model, ProviderConnection
from apps.providers.services import read_credential
from tests.api.conftest import client_for
from tests.iam.factories import make_member, make_org, unique


def connection_of(organization=None) -> ProviderConnection:
    return ProviderConnection.objects.create(
        organization=organization,
        name=unique("conn"),
        provider_type="openai",
        base_url="http://127.0.0.1:9/v1",
    )


@pytest.fixture
def orgs(db):
    org, other = make_org(), make_org()
    admin = client_for(make_member(org, "org_admin"))
    return org, other, admin


def test_admin_creates_own_connection(orgs):
    org, _, admin = orgs

    response = admin.post(
        "/api/v1/provider-connections/",
        {
            "organization": org.slug,
            "name": unique("c"),
            "provider_type": "openai",
            "credential": "sk-own",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["organization"] == org.slug
    assert body["has_credential"] is True
    assert "credential" not in body
    stored = ProviderConnection.objects.get(pk=body["id"])
    assert stored.organization == org
    assert read_credential(stored) == "sk-own"


def test_admin_updates_and_deletes_own_connection(orgs):
    org, _, admin = orgs
    connection = connection_of(org)

    updated = admin.patch(
        f"/api/v1/provider-connections/{connection.pk}/",
        {"region": "eu"},
        format="json",
    )
    deleted = admin.delete(f"/api/v1/provider-connections/{connection.pk}/")

    assert updated.status_code == 200
    assert updated.json()["region"] == "eu"
    assert deleted.status_code == 204
    assert not ProviderConnection.objects.filter(pk=connection.pk).exists()


def test_other_org_connection_is_not_found(orgs):
    _, other, admin = orgs
    connection = connection_of(other)
    path = f"/api/v1/provider-connections/{connection.pk}/"

    assert admin.get(path).status_code == 404
    assert admin.patch(path, {"region": "eu"}, format="json").status_code == 404
    assert admin.delete(path).status_code == 404
    listed = admin.get("/api/v1/provider-connections/").json()["results"]
    assert connection.pk not in [row["id"] for row in listed]


def test_create_in_other_org_is_not_found(orgs):
    _, other, admin = orgs

    response = admin.post(
        "/api/v1/provider-connections/",
        {"organization": other.slug, "name": unique("c"), "provider_type": "openai"},
        format="json",
    )

    assert response.status_code == 404


def test_shared_connection_is_read_only_for_admin(orgs):
    _, _, admin = orgs
    connection = connection_of()
    path = f"/api/v1/provider-connections/{connection.pk}/"

    assert admin.get(path).status_code == 200
    assert admin.patch(path, {"region": "eu"}, format="json").status_code == 403
    assert admin.delete(path).status_code == 403
    created = admin.post(
        "/api/v1/provider-connections/",
        {"name": unique("c"), "provider_type": "openai"},
        format="json",
    )
    assert created.status_code == 403


def test_list_shows_own_and_shared_connections(orgs):
    org, other, admin = orgs
    own, shared, foreign = connection_of(org), connection_of(), connection_of(other)

    listed = admin.get("/api/v1/provider-connections/").json()["results"]
    ids = {row["id"] for row in listed}

    assert own.pk in ids
    assert shared.pk in ids
    assert foreign.pk not in ids


def test_admin_creates_model_on_own_connection(orgs):
    org, _, admin = orgs
    connection = connection_of(org)

    response = admin.post(
        "/api/v1/models/",
        {"name": unique("m"), "connection": connection.pk, "upstream_model": "x"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["organization"] == org.slug


def test_model_on_other_org_connection_is_rejected(orgs):
    _, other, admin = orgs
    connection = connection_of(other)

    response = admin.post(
        "/api/v1/models/",
        {"name": unique("m"), "connection": connection.pk, "upstream_model": "x"},
        format="json",
    )

    assert response.status_code == 400
    assert "connection" in response.json()["error"]["details"]


def test_model_on_shared_connection_is_forbidden(orgs):
    _, _, admin = orgs
    shared = connection_of()

    response = admin.post(
        "/api/v1/models/",
        {"name": unique("m"), "connection": shared.pk, "upstream_model": "x"},
        format="json",
    )

    assert response.status_code == 403


def test_model_cannot_move_to_shared_connection(orgs):
    org, _, admin = orgs
    model = Model.objects.create(
        name=unique("m"), connection=connection_of(org), upstream_model="x"
    )

    response = admin.patch(
        f"/api/v1/models/{model.pk}/",
        {"connection": connection_of().pk},
        format="json",
    )

    assert response.status_code == 403
    model.refresh_from_db()
    assert model.connection.organization == org


def test_other_org_model_is_not_found(orgs):
    _, other, admin = orgs
    model = Model.objects.create(
        name=unique("m"), connection=connection_of(other), upstream_model="x"
    )
    path = f"/api/v1/models/{model.pk}/"

    assert admin.get(path).status_code == 404
    assert admin.patch(path, {"input_price": "1"}, format="json").status_code == 404
    assert admin.delete(path).status_code == 404


def test_model_names_stay_unique_across_orgs(orgs):
    org, other, admin = orgs
    existing = Model.objects.create(
        name=unique("m"), connection=connection_of(other), upstream_model="x"
    )

    response = admin.post(
        "/api/v1/models/",
        {
            "name": existing.name,
            "connection": connection_of(org).pk,
            "upstream_model": "x",
        },
        format="json",
    )

    assert response.status_code == 400


def test_superuser_creates_shared_connection(db):
    root = get_user_model().objects.create_superuser(username=unique("root"))
    response = client_for(root).post(
        "/api/v1/provider-connections/",
        {"name": unique("c"), "provider_type": "openai", "organization": None},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["organization"] is None


def test_organization_with_own_connection_cannot_be_deleted(db):
    org = make_org()
    owner = client_for(make_member(org, "org_owner"))
    connection_of(org)

    response = owner.delete(f"/api/v1/orgs/{org.slug}/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "in_use"


def test_admin_changelist_shows_own_and_shared_connections(orgs):
    org, other, _ = orgs
    own, shared, foreign = connection_of(org), connection_of(), connection_of(other)
    staff = Client()
    staff.force_login(make_member(org, "org_admin", is_staff=True))

    page = staff.get(reverse("admin:providers_providerconnection_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert own.name in html
    assert shared.name in html
    assert foreign.name not in html


def test_admin_adds_model_only_on_own_connection(orgs):
    org, other, _ = orgs
    own, foreign = connection_of(org), connection_of(other)
    staff = Client()
    staff.force_login(make_member(org, "org_admin", is_staff=True))
    form = {
        "name": unique("m"),
        "aliases": "[]",
        "kind": "chat",
        "upstream_model": "x",
        "input_price": "0",
        "output_price": "0",
        "enabled": "on",
    }
    url = reverse("admin:providers_model_add")

    rejected = staff.post(url, {**form, "connection": foreign.pk})
    added = staff.post(url, {**form, "connection": own.pk})

    assert rejected.status_code == 200
    assert "Select a valid choice" in rejected.content.decode()
    assert added.status_code == 302, added.content
    assert Model.objects.get(name=form["name"]).connection == own
