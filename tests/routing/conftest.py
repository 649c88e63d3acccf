import dataclasses
from typing import Any

import httpx
import orjson
import pytest

from apps.audit.models import AuditEvent
from apps.routing.models import Route
from nexus.engine.routing.health import BreakerConfig
from tests.support.factories import make_connection, make_model, make_tenant, unique

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


class RoutingSetup:
    """An OpenAI and an Anthropic connection on the fake provider, a tenant and helpers."""

    def __init__(self, fake_provider, gateway) -> None:
        self.fake = fake_provider
        self.gateway = gateway
        self.openai = make_connection("openai", fake_provider.openai_base)
        self.anthropic = make_connection("anthropic", fake_provider.anthropic_base)
        self.tenant = make_tenant()
        self.key = self.tenant.key

    def model(
        self, upstream: str = "gpt-4o-mini", *, anthropic: bool = False, **fields
    ):
        connection = self.anthropic if anthropic else self.openai
        return make_model(connection, upstream, **fields)

    def route(self, model, config: Any, **fields) -> Route:
        route = Route(
            name=fields.pop("name", unique("route")),
            model=model.name,
            config=config,
            **fields,
        )
        route.full_clean()
        route.save()
        self.gateway.refresh()
        return route

    def chat(self, model: str, *, key: str | None = None, headers=None, **body):
        payload = {"model": model, "messages": [{"role": "user", "content": "ping"}]}
        payload.update(body)
        return httpx.post(
            f"{self.gateway.url}/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {key or self.key}", **(headers or {})},
            timeout=30,
        )

    def messages(self, model: str, **body):
        payload = {
            "model": model,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "ping"}],
        }
        payload.update(body)
        return httpx.post(
            f"{self.gateway.url}/v1/messages",
            json=payload,
            headers={"x-api-key": self.key, "anthropic-version": "2023-06-01"},
            timeout=30,
        )

    def audit(self, response) -> AuditEvent:
        self.gateway.flush_audit()
        return AuditEvent.objects.get(request_id=response.headers["x-request-id"])

    def upstream_models(self) -> list[str]:
        return [request.json["model"] for request in self.fake.requests]


@pytest.fixture
def routing(fake_provider, gateway, db_rows) -> RoutingSetup:
    return RoutingSetup(fake_provider, gateway)


@pytest.fixture
def breaker(gateway):
    """Set the gateway's breaker thresholds for one test, then restore them."""
    health = gateway.runtime.router.health
    original = health.config

    def configure(**changes) -> BreakerConfig:
        health.config = dataclasses.replace(original, **changes)
        return health.config

    yield configure
    health.config = original


def sse_events(text: str) -> list[tuple[str, Any]]:
    """Return (event name, parsed data) for each server-sent event in text."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if not data:
            continue
        joined = "\n".join(data)
        events.append((name, joined if joined == "[DONE]" else orjson.loads(joined)))
    return events
