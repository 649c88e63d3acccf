"""Embeddings through the route's retries and failover, against scripted failures."""

import openai
import pytest

from apps.audit.models import AuditEvent
from apps.routing.models import Route
from tests.support.factories import make_connection, make_model, make_tenant, unique

EMBEDDINGS_PATH = "/v1/embeddings"


class EmbeddingsRoute:
    """Two embeddings models on the fake provider behind a fallback route."""

    def __init__(self, fake_provider, gateway) -> None:
        connection = make_connection("openai", fake_provider.openai_base)
        self.connection = connection
        self.primary = make_model(connection, "emb-primary", kind="embeddings")
        self.backup = make_model(connection, "emb-backup", kind="embeddings")
        self.fake = fake_provider
        self.gateway = gateway
        tenant = make_tenant()
        self.client = openai.OpenAI(
            base_url=gateway.openai_base, api_key=tenant.key, max_retries=0
        )

    def route(self, **fields) -> Route:
        route = Route(
            name=unique("route"),
            model=self.primary.name,
            config={
                "strategy": "fallback",
                "targets": [self.primary.name, self.backup.name],
            },
            **fields,
        )
        route.full_clean()
        route.save()
        self.gateway.refresh()
        return route

    def embed(self):
        return self.client.embeddings.with_raw_response.create(
            model=self.primary.name, input=["a", "b"]
        )

    def audit(self, request_id: str) -> AuditEvent:
        self.gateway.flush_audit()
        return AuditEvent.objects.get(request_id=request_id)

    def upstream_models(self) -> list[str]:
        return [request.json["model"] for request in self.fake.requests]


@pytest.fixture
def embeddings(fake_provider, gateway, db_rows) -> EmbeddingsRoute:
    return EmbeddingsRoute(fake_provider, gateway)


def failure(status: int, error_type: str = "api_error") -> dict:
    return {"status": status, "error": {"type": error_type, "message": "Overloaded"}}


@pytest.mark.parametrize(
    "script",
    [failure(503), failure(429, "rate_limit_error"), {"then": "close"}],
    ids=["503", "429", "connection-closed"],
)
def test_failure_fails_over_to_second_target(embeddings, script):
    route = embeddings.route()
    embeddings.fake.enqueue(EMBEDDINGS_PATH, script)

    raw = embeddings.embed()

    result = raw.parse()
    assert len(result.data) == 2
    assert result.model == embeddings.primary.name
    assert embeddings.upstream_models() == ["emb-primary", "emb-backup"]
    assert raw.headers["x-nexus-model"] == embeddings.backup.name
    assert raw.headers["x-nexus-route"] == route.name
    assert raw.headers["x-nexus-attempts"] == "2"


def test_audit_records_both_attempts(embeddings):
    embeddings.route()
    embeddings.fake.enqueue(EMBEDDINGS_PATH, failure(503))

    raw = embeddings.embed()

    event = embeddings.audit(raw.headers["x-request-id"])
    first, second = event.details["attempts"]
    assert event.status_code == 200
    assert event.model == embeddings.backup.name
    assert event.upstream_model == "emb-backup"
    assert first["model"] == embeddings.primary.name
    assert first["status"] == 503
    assert first["error"] == "upstream_error"
    assert second["model"] == embeddings.backup.name
    assert second["status"] == 200
    assert second["error"] == ""
    assert first["provider"] == second["provider"] == embeddings.connection.name
    assert event.input_tokens > 0


def test_retries_same_target_before_failing_over(embeddings):
    embeddings.route(retries=1, backoff_seconds=0.01, max_backoff_seconds=0.02)
    embeddings.fake.enqueue(EMBEDDINGS_PATH, failure(429, "rate_limit_error"))

    raw = embeddings.embed()

    assert raw.http_response.status_code == 200
    assert embeddings.upstream_models() == ["emb-primary", "emb-primary"]
    attempts = embeddings.audit(raw.headers["x-request-id"]).details["attempts"]
    assert [attempt["status"] for attempt in attempts] == [429, 200]


def test_timeout_fails_over(embeddings):
    embeddings.route(timeout_seconds=0.3)
    embeddings.fake.enqueue(EMBEDDINGS_PATH, {"delay": 2})

    raw = embeddings.embed()

    assert embeddings.upstream_models() == ["emb-primary", "emb-backup"]
    first, second = embeddings.audit(raw.headers["x-request-id"]).details["attempts"]
    assert first["error"] == "upstream_timeout"
    assert first["status"] == 504
    assert second["status"] == 200


def test_client_error_does_not_fail_over(embeddings):
    embeddings.route(retries=2)
    embeddings.fake.enqueue(
        EMBEDDINGS_PATH,
        {"status": 400, "error": {"type": "invalid_request_error", "message": "bad"}},
    )

    with pytest.raises(openai.BadRequestError) as caught:
        embeddings.embed()

    assert embeddings.upstream_models() == ["emb-primary"]
    assert caught.value.response.headers["x-nexus-attempts"] == "1"


def test_every_target_failing_returns_last_error(embeddings):
    embeddings.route()
    embeddings.fake.enqueue(EMBEDDINGS_PATH, failure(503))
    embeddings.fake.enqueue(EMBEDDINGS_PATH, failure(502))

    with pytest.raises(openai.APIStatusError) as caught:
        embeddings.embed()

    response = caught.value.response
    assert response.status_code == 502
    assert response.headers["x-nexus-attempts"] == "2"
    assert caught.value.body["type"] == "api_error"
    attempts = embeddings.audit(response.headers["x-request-id"]).details["attempts"]
    assert [attempt["status"] for attempt in attempts] == [503, 502]
