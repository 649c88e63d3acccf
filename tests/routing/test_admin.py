"""The route admin: validation on save, and the target health screen."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.routing.health import gateway_health, read_health
from apps.routing.models import Route
from nexus.engine.routing.outcomes import Outcome
from tests.support.factories import make_connection, make_model, unique


@pytest.fixture
def admin_client(db) -> Client:
    user = get_user_model().objects.create_superuser(
        username=unique("admin"), password="unused-password-1"
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def models(db):
    connection = make_connection("openai", "http://127.0.0.1:9/v1")
    return make_model(connection, "gpt-4o"), make_model(connection, "gpt-4o-mini")


def form(models, **fields) -> dict:
    primary, backup = models
    data = {
        "name": unique("route"),
        "description": "",
        "model": primary.name,
        "enabled": "on",
        "priority": "100",
        "match_headers": "{}",
        "match_metadata": "{}",
        "config": f'{{"strategy": "fallback", "targets": ["{primary.name}", "{backup.name}"]}}',
        "retries": "0",
        "backoff_seconds": "0.25",
        "max_backoff_seconds": "8",
        "timeout_seconds": "",
        "failover_statuses": "[]",
    }
    data.update(fields)
    return data


def open_circuit(model) -> str:
    """Fail the model's target until its breaker opens, in the backend the admin reads."""
    target_id = f"{model.pk}:{model.name}"
    backend = gateway_health()
    for _ in range(backend.config.consecutive_failures):
        backend.record(target_id, Outcome(ok=False, latency_ms=3, status=503))

    async def push() -> None:
        await backend.sync()
        await backend.close()

    asyncio.run(push())
    return target_id


def test_add_form_saves_a_valid_route(admin_client, models):
    data = form(models)

    response = admin_client.post("/admin/routing/route/add/", data)

    assert response.status_code == 302
    assert Route.objects.filter(name=data["name"]).exists()


def test_add_form_shows_config_errors(admin_client, models):
    data = form(
        models,
        config='{"strategy": "loadbalance", "targets": [{"model": "x", "weight": -1}]}',
    )

    response = admin_client.post("/admin/routing/route/add/", data)

    assert response.status_code == 200
    assert "must be a positive number" in response.content.decode()
    assert not Route.objects.filter(name=data["name"]).exists()


def test_health_page_shows_open_circuit(admin_client, models):
    primary, _ = models
    admin_client.post("/admin/routing/route/add/", form(models))
    open_circuit(primary)

    page = admin_client.get("/admin/routing/route/health/")

    assert page.status_code == 200
    text = page.content.decode()
    assert primary.name in text
    assert "<td>open</td>" in text


def test_change_page_shows_target_health(admin_client, models):
    admin_client.post("/admin/routing/route/add/", form(models))
    route = Route.objects.latest("pk")

    page = admin_client.get(f"/admin/routing/route/{route.pk}/change/")

    assert page.status_code == 200
    assert "latency (EWMA)" in page.content.decode()


def test_reset_closes_the_circuit(admin_client, models):
    primary, _ = models
    admin_client.post("/admin/routing/route/add/", form(models))
    target_id = open_circuit(primary)
    assert read_health([target_id])[target_id].state == "open"

    response = admin_client.post(
        "/admin/routing/route/health/reset/", {"target_id": target_id}
    )

    assert response.status_code == 302
    assert read_health([target_id])[target_id].state == "closed"
