"""Virtual keys reject unknown allowed models and past expiry times (API and admin)."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.keys.models import VirtualKey
from apps.keys.services import issue_key
from apps.providers.models import Model
from tests.api.conftest import client_for
from tests.iam.factories import unique

URL = "/api/v1/keys/"


@pytest.fixture
def model(world) -> Model:
    return Model.objects.create(
        name=unique("chat"),
        aliases=[unique("alias")],
        connection=world.rows["connection"],
        upstream_model="gpt-test",
    )


@pytest.fixture
def owner(world):
    return client_for(world.members["org_owner"])


@pytest.fixture
def admin(world) -> Client:
    client = Client()
    client.force_login(world.members["superuser"])
    return client


@pytest.fixture
def expired_key(world, model) -> VirtualKey:
    return issue_key(
        organization=world.org,
        name="expired",
        allowed_models=[model.name],
        expires_at=timezone.now() - timedelta(days=1),
    ).key


def details(response) -> dict:
    return response.json()["error"]["details"]


def create(client, world, **fields):
    body = {"organization": world.org.slug, "name": "app", **fields}
    return client.post(URL, body, format="json")


def test_api_accepts_model_name_and_alias(owner, world, model):
    allowed = [model.name, model.aliases[0]]
    expires_at = timezone.now() + timedelta(days=30)

    response = create(
        owner, world, allowed_models=allowed, expires_at=expires_at.isoformat()
    )

    assert response.status_code == 201, response.content
    key = VirtualKey.objects.get(pk=response.json()["id"])
    assert key.allowed_models == allowed
    assert key.expires_at == expires_at


@pytest.mark.parametrize("name", ["no-such-model", "gpt-*", "*", "gpt-test"])
def test_api_rejects_unknown_model(owner, world, model, name):
    response = create(owner, world, allowed_models=[model.name, name])

    assert response.status_code == 400
    assert details(response)["allowed_models"] == [
        f'Model "{name}" does not exist. Use a model name or alias.'
    ]
    assert not VirtualKey.objects.filter(name="app").exists()


@pytest.mark.parametrize("value", ["gpt-4o", [""], [3], {"a": 1}])
def test_api_rejects_malformed_allowed_models(owner, world, value):
    response = create(owner, world, allowed_models=value)

    assert response.status_code == 400
    assert "allowed_models" in details(response)


@pytest.mark.parametrize("age", [timedelta(0), timedelta(minutes=5)])
def test_api_rejects_past_expiry(owner, world, age):
    expires_at = timezone.now() - age

    response = create(owner, world, expires_at=expires_at.isoformat())

    assert response.status_code == 400
    assert "is not in the future" in details(response)["expires_at"][0]
    assert not VirtualKey.objects.filter(name="app").exists()


def test_api_update_rejects_unknown_model(owner, world):
    key = world.rows["key_org"]

    response = owner.patch(
        f"{URL}{key.pk}/", {"allowed_models": ["no-such-model"]}, format="json"
    )

    assert response.status_code == 400
    assert "allowed_models" in details(response)
    key.refresh_from_db()
    assert key.allowed_models == []


def test_api_update_rejects_past_expiry(owner, world):
    key = world.rows["key_org"]
    past = timezone.now() - timedelta(hours=1)

    response = owner.patch(
        f"{URL}{key.pk}/", {"expires_at": past.isoformat()}, format="json"
    )

    assert response.status_code == 400
    assert "expires_at" in details(response)
    key.refresh_from_db()
    assert key.expires_at is None


def test_api_update_of_expired_key(owner, expired_key):
    response = owner.patch(
        f"{URL}{expired_key.pk}/", {"name": "renamed"}, format="json"
    )

    assert response.status_code == 200, response.content
    expired_key.refresh_from_db()
    assert expired_key.name == "renamed"


def test_api_put_keeps_past_expiry(owner, world, expired_key):
    body = owner.get(f"{URL}{expired_key.pk}/").json()
    body["name"] = "renamed"

    response = owner.put(f"{URL}{expired_key.pk}/", body, format="json")

    assert response.status_code == 200, response.content


def test_api_update_keeps_removed_model(owner, expired_key, model):
    # The key was issued for a model that was removed later.
    model.delete()

    response = owner.patch(
        f"{URL}{expired_key.pk}/",
        {"allowed_models": [model.name], "name": "renamed"},
        format="json",
    )

    assert response.status_code == 200, response.content


def admin_form(world, **fields) -> dict:
    expires_at = fields.pop("expires_at", None)
    form = {
        "organization": world.org.pk,
        "project": "",
        "owner": "",
        "name": "admin-key",
        "allowed_models": json.dumps(fields.pop("allowed_models", [])),
        "expires_at_0": "",
        "expires_at_1": "",
    }
    if expires_at is not None:
        form["expires_at_0"] = expires_at.strftime("%Y-%m-%d")
        form["expires_at_1"] = expires_at.strftime("%H:%M:%S")
    form.update(fields)
    return form


def admin_errors(response) -> dict:
    return response.context["adminform"].form.errors


def test_admin_adds_key_for_known_model(admin, world, model):
    expires_at = timezone.now() + timedelta(days=2)
    form = admin_form(world, allowed_models=[model.aliases[0]], expires_at=expires_at)

    response = admin.post(reverse("admin:keys_virtualkey_add"), form)

    assert response.status_code == 302, response.content
    key = VirtualKey.objects.get(name="admin-key")
    assert key.allowed_models == [model.aliases[0]]


def test_admin_rejects_unknown_model(admin, world, model):
    form = admin_form(world, allowed_models=[model.name, "no-such-model"])

    response = admin.post(reverse("admin:keys_virtualkey_add"), form)

    assert response.status_code == 200
    assert admin_errors(response)["allowed_models"] == [
        'Model "no-such-model" does not exist. Use a model name or alias.'
    ]
    assert not VirtualKey.objects.filter(name="admin-key").exists()


def test_admin_rejects_past_expiry(admin, world):
    form = admin_form(world, expires_at=timezone.now() - timedelta(hours=2))

    response = admin.post(reverse("admin:keys_virtualkey_add"), form)

    assert response.status_code == 200
    assert "is not in the future" in admin_errors(response)["expires_at"][0]
    assert not VirtualKey.objects.filter(name="admin-key").exists()


def test_admin_change_rejects_past_expiry(admin, world, model):
    key = world.rows["key_org"]
    form = admin_form(
        world, name=key.name, expires_at=timezone.now() - timedelta(hours=2)
    )

    response = admin.post(reverse("admin:keys_virtualkey_change", args=[key.pk]), form)

    assert response.status_code == 200
    assert "expires_at" in admin_errors(response)
    key.refresh_from_db()
    assert key.expires_at is None


def test_admin_change_keeps_expired_key(admin, world, expired_key, model):
    form = admin_form(
        world,
        name="renamed",
        allowed_models=[model.name],
        expires_at=expired_key.expires_at,
    )

    response = admin.post(
        reverse("admin:keys_virtualkey_change", args=[expired_key.pk]), form
    )

    assert response.status_code == 302, response.content
    expired_key.refresh_from_db()
    assert expired_key.name == "renamed"
