"""Overloaded and rate-limited providers: status mapping and fallback, with real SDKs.

The first test replays a recorded incident: Anthropic answers 529 overloaded_error
and a route falls back to an OpenAI model. The others cover the same kind of failure
on other statuses, other providers and inside a stream.
"""

from decimal import Decimal

import anthropic
import openai
import pytest

from tests.cases.loader import load_case
from tests.routing.conftest import ANTHROPIC_PATH, OPENAI_PATH, sse_events
from tests.support.factories import make_tenant

CASE = load_case(22)
UPSTREAM = CASE["upstream_response"]
EXPECT = CASE["expect"]


def scripted(response: dict) -> dict:
    """Return a fake provider script that plays a recorded upstream response."""
    return {
        "status": response["status"],
        "headers": response["headers"],
        "json": response["body"],
    }


ANTHROPIC_529 = scripted(UPSTREAM["anthropic"])
ANTHROPIC_429 = scripted(UPSTREAM["anthropic_429_variant"])
OPENAI_PONG = scripted(UPSTREAM["openai_fallback"])
FALLBACK_ON = CASE["setup"]["routing"]["chat-main"]["fallback_on"]


class Incident:
    """The incident's setup: chat-main on Anthropic, chat-backup on OpenAI."""

    def __init__(self, routing, *, fallback: bool) -> None:
        self.routing = routing
        self.main = routing.model(
            "claude-sonnet-4-5-20250929",
            anthropic=True,
            input_price=Decimal(3),
            output_price=Decimal(15),
        )
        self.backup = routing.model(
            "gpt-4.1", input_price=Decimal(2), output_price=Decimal(8)
        )
        self.tenant = make_tenant(allowed_models=[self.main.name])
        if fallback:
            self.route = routing.route(
                self.main,
                {"strategy": "fallback", "targets": [self.main.name, self.backup.name]},
                retries=CASE["setup"]["routing"]["chat-main"]["retries_same_provider"],
                failover_statuses=FALLBACK_ON,
            )
        else:
            routing.gateway.refresh()

    def openai_client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self.tenant.key,
            base_url=self.routing.gateway.openai_base,
            max_retries=0,
        )

    def anthropic_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=self.tenant.key, base_url=self.routing.gateway.url, max_retries=0
        )

    def ping(self):
        return self.openai_client().chat.completions.with_raw_response.create(
            model=self.main.name,
            max_tokens=50,
            messages=[{"role": "user", "content": "ping"}],
        )


def test_anthropic_529_falls_back_to_openai(routing):
    incident = Incident(routing, fallback=True)
    routing.fake.enqueue(ANTHROPIC_PATH, ANTHROPIC_529)
    routing.fake.enqueue(OPENAI_PATH, OPENAI_PONG)

    raw = incident.ping()
    completion = raw.parse()

    expected = EXPECT["with_fallback"]
    assert raw.status_code == expected["client_status"]
    assert (
        completion.choices[0].message.content == expected["choices[0].message.content"]
    )
    assert raw.headers["x-nexus-provider"] == routing.openai.name
    assert raw.headers["x-nexus-model"] == incident.backup.name
    assert raw.headers["x-nexus-attempts"] == "2"
    assert raw.headers["x-nexus-route"] == incident.route.name
    event = routing.audit(raw.http_response)
    first, second = event.details["attempts"]
    assert (first["provider"], first["status"]) == (routing.anthropic.name, 529)
    assert first["error"] == "upstream_error"
    assert (second["provider"], second["status"]) == (routing.openai.name, 200)
    assert event.provider == routing.openai.name
    # Only the answer that served is charged: 8 input and 2 output tokens at 2 and 8 USD/M.
    assert (event.input_tokens, event.output_tokens) == (8, 2)
    assert event.cost_nano_usd == 8 * 2_000 + 2 * 8_000


def test_anthropic_529_without_fallback_stays_overloaded_on_openai_ingress(routing):
    incident = Incident(routing, fallback=False)
    routing.fake.enqueue(ANTHROPIC_PATH, ANTHROPIC_529)

    with pytest.raises(openai.APIStatusError) as caught:
        incident.ping()

    assert caught.value.status_code == 529
    error = caught.value.body
    assert error["type"] == "overloaded_error"
    assert "overload" in error["message"].lower()


def test_anthropic_529_without_fallback_stays_529_on_messages(routing):
    incident = Incident(routing, fallback=False)
    routing.fake.enqueue(ANTHROPIC_PATH, ANTHROPIC_529)

    with pytest.raises(anthropic.APIStatusError) as caught:
        incident.anthropic_client().messages.create(
            model=incident.main.name,
            max_tokens=50,
            messages=[{"role": "user", "content": "ping"}],
        )

    assert (
        caught.value.status_code
        == EXPECT["without_fallback_anthropic_ingress"]["client_status"]
    )
    assert isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_anthropic_429_passes_retry_after_through(routing):
    incident = Incident(routing, fallback=False)
    routing.fake.enqueue(ANTHROPIC_PATH, ANTHROPIC_429)

    with pytest.raises(openai.RateLimitError) as caught:
        incident.ping()

    assert caught.value.status_code == 429
    assert (
        caught.value.response.headers["retry-after"]
        == (UPSTREAM["anthropic_429_variant"]["headers"]["retry-after"])
    )
    assert caught.value.body["type"] == "rate_limit_error"


def test_anthropic_429_falls_back(routing):
    incident = Incident(routing, fallback=True)
    routing.fake.enqueue(ANTHROPIC_PATH, ANTHROPIC_429)
    routing.fake.enqueue(OPENAI_PATH, OPENAI_PONG)

    raw = incident.ping()

    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content == "pong"


def test_fallback_reaches_models_outside_key_scope(routing):
    incident = Incident(routing, fallback=True)
    routing.fake.enqueue(ANTHROPIC_PATH, ANTHROPIC_529)
    routing.fake.enqueue(OPENAI_PATH, OPENAI_PONG)

    direct = routing.chat(incident.backup.name, key=incident.tenant.key)
    routed = incident.ping()

    assert direct.status_code == 403
    assert routed.status_code == 200


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "error": {"type": "server_error", "message": "overloaded"}},
        {"status": 529, "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"status": 500, "error": {"type": "server_error", "message": "engine busy"}},
    ],
    ids=["openai-503", "openai-compatible-529", "openai-500"],
)
def test_openai_overload_falls_back_to_anthropic(routing, failure):
    primary = routing.model("gpt-4.1")
    backup = routing.model("claude-sonnet-4-5", anthropic=True)
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(OPENAI_PATH, failure)

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert response.headers["x-nexus-model"] == backup.name


def test_overloaded_event_before_any_chunk_falls_back(routing):
    primary = routing.model("claude-sonnet-4-5", anthropic=True)
    backup = routing.model("gpt-4.1")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(
        ANTHROPIC_PATH,
        {
            "headers": {"content-type": "text/event-stream"},
            "sse": 'event: error\ndata: {"type": "error", "error": '
            '{"type": "overloaded_error", "message": "Overloaded"}}\n\n',
        },
    )

    response = routing.chat(primary.name, stream=True)

    assert response.status_code == 200
    assert response.headers["x-nexus-model"] == backup.name
    events = sse_events(response.text)
    assert events[-1][1] == "[DONE]"
    attempts = routing.audit(response).details["attempts"]
    assert [attempt["status"] for attempt in attempts] == [529, 200]
    assert attempts[0]["error"] == "upstream_error"


def test_overloaded_event_after_text_ends_stream_with_overloaded_error(routing):
    primary = routing.model("claude-sonnet-4-5", anthropic=True)
    backup = routing.model("gpt-4.1")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    message_start = (
        'event: message_start\ndata: {"type": "message_start", "message": {"id": '
        '"msg_1", "type": "message", "role": "assistant", "model": "claude", '
        '"content": [], "stop_reason": null, "usage": {"input_tokens": 3, '
        '"output_tokens": 0}}}\n\n'
        'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, '
        '"content_block": {"type": "text", "text": ""}}\n\n'
        'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
        '"delta": {"type": "text_delta", "text": "po"}}\n\n'
    )
    overloaded = (
        'event: error\ndata: {"type": "error", "error": '
        '{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    routing.fake.enqueue(
        ANTHROPIC_PATH,
        {
            "headers": {"content-type": "text/event-stream"},
            "sse": message_start + overloaded,
            "chunk_delay": 0.05,
        },
    )

    response = routing.chat(primary.name, stream=True)

    events = sse_events(response.text)
    assert response.status_code == 200
    assert "po" in [
        data["choices"][0]["delta"].get("content") for _, data in events[:-1]
    ]
    assert events[-1][1]["error"]["type"] == "overloaded_error"
    assert all(data != "[DONE]" for _, data in events)
    assert routing.upstream_models() == ["claude-sonnet-4-5"]
