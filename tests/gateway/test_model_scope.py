"""A key's allowed models are checked by public name and alias, never the upstream id."""

import httpx
import openai
import pytest

from apps.audit.models import AuditEvent
from tests.support.factories import make_connection, make_model, make_tenant


@pytest.fixture
def scoped(fake_provider, gateway, db_rows):
    connection = make_connection("openai", fake_provider.openai_base)
    model = make_model(connection, "glm-physical-5", aliases=[])
    model.aliases = [model.name + "-alias"]
    model.save()
    tenant = make_tenant(allowed_models=[model.aliases[0]])
    gateway.refresh()
    return model, tenant, gateway


def post(gateway, key, path, model_name):
    body = {
        "model": model_name,
        "messages": [{"role": "user", "content": "hi"}],
        "input": "hi",
        "max_tokens": 5,
    }
    return httpx.post(
        f"{gateway.url}{path}",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_alias_is_served_by_upstream_model(scoped, fake_provider):
    model, tenant, gateway = scoped

    response = post(gateway, tenant.key, "/v1/chat/completions", model.aliases[0])

    assert response.status_code == 200
    assert fake_provider.requests[-1].json["model"] == "glm-physical-5"


@pytest.mark.parametrize(
    "requested",
    [
        "glm-physical-5",
        "openai/glm-physical-5",
        "{alias}".upper(),
        " {alias}",
        "unknown-model",
    ],
)
def test_other_names_get_403_without_upstream_call(scoped, fake_provider, requested):
    model, tenant, gateway = scoped
    requested = requested.replace("{ALIAS}", model.aliases[0].upper()).replace(
        "{alias}", model.aliases[0]
    )

    response = post(gateway, tenant.key, "/v1/chat/completions", requested)

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    assert fake_provider.requests == []


@pytest.mark.parametrize("path", ["/v1/embeddings", "/v1/messages"])
def test_physical_name_rejected_on_other_endpoints(scoped, fake_provider, path):
    model, tenant, gateway = scoped

    response = post(gateway, tenant.key, path, "glm-physical-5")

    assert response.status_code == 403
    assert fake_provider.requests == []


def test_model_list_hides_physical_name(scoped):
    model, tenant, gateway = scoped
    client = openai.OpenAI(
        base_url=gateway.openai_base, api_key=tenant.key, max_retries=0
    )

    names = [entry.id for entry in client.models.list()]

    assert names == [model.name]


def test_denied_attempt_is_audited(scoped):
    model, tenant, gateway = scoped

    response = post(gateway, tenant.key, "/v1/chat/completions", "glm-physical-5")
    gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert event.status_code == 403
    assert event.requested_model == "glm-physical-5"
    assert event.key_id == tenant.key_row.pk


def test_unknown_model_is_404_for_unscoped_key(fake_provider, gateway, db_rows):
    tenant = make_tenant()
    gateway.refresh()

    response = post(gateway, tenant.key, "/v1/chat/completions", "no-such-model")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
