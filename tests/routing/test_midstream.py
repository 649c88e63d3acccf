"""Streams that fail: before the first chunk they fail over, after it they end in an error."""

import pytest

from nexus.engine.stages import Stage
from tests.routing.conftest import ANTHROPIC_PATH, OPENAI_PATH, sse_events


class CompletionProbe(Stage):
    """Record what on_complete sees, as a cache or billing stage would."""

    name = "completion-probe"

    def __init__(self) -> None:
        self.seen: list[tuple[bool, str]] = []

    async def on_complete(self, call, request) -> None:
        self.seen.append((call.complete, call.error_code))


@pytest.fixture
def probe(gateway):
    stage = CompletionProbe()
    gateway.runtime.stages.append(stage)
    yield stage
    gateway.runtime.stages.remove(stage)


@pytest.fixture
def fallback(routing):
    """A route on an OpenAI model that falls back to an Anthropic one."""
    primary = routing.model("gpt-4.1")
    backup = routing.model("claude-sonnet-4-5", anthropic=True)
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    return primary, backup


def test_chat_stream_cut_after_first_chunk_ends_with_error_event(
    routing, fallback, probe
):
    primary, _ = fallback
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "reply": {"text": "one two three four"},
            "chunk_delay": 0.05,
            "close_after": 2,
        },
    )

    response = routing.chat(primary.name, stream=True)

    events = sse_events(response.text)
    assert response.status_code == 200
    assert events[0][1]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1][1]["error"]["code"] == "upstream_protocol_error"
    assert all(data != "[DONE]" for _, data in events)
    assert not any(
        isinstance(data, dict)
        and data.get("choices")
        and data["choices"][0].get("finish_reason")
        for _, data in events
    )
    assert routing.upstream_models() == ["gpt-4.1"]
    routing.gateway.flush_audit()
    assert probe.seen == [(False, "upstream_protocol_error")]
    event = routing.audit(response)
    assert event.error_code == "upstream_protocol_error"
    assert event.details["attempts"][0]["error"] == "upstream_protocol_error"


def test_messages_stream_cut_after_first_event_ends_with_error_event(routing, probe):
    primary = routing.model("claude-sonnet-4-5", anthropic=True)
    backup = routing.model("gpt-4.1")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(
        ANTHROPIC_PATH,
        {
            "reply": {"text": "one two three four"},
            "chunk_delay": 0.05,
            "close_after": 3,
        },
    )

    response = routing.messages(primary.name, stream=True)

    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert response.status_code == 200
    assert names[0] == "message_start"
    assert names[-1] == "error"
    assert events[-1][1]["type"] == "error"
    assert "message_stop" not in names
    assert routing.upstream_models() == ["claude-sonnet-4-5"]
    routing.gateway.flush_audit()
    assert probe.seen == [(False, "upstream_protocol_error")]


def test_messages_stream_from_openai_cut_ends_with_anthropic_error(
    routing, fallback, probe
):
    primary, _ = fallback
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "reply": {"text": "one two three four"},
            "chunk_delay": 0.05,
            "close_after": 2,
        },
    )

    response = routing.messages(primary.name, stream=True)

    names = [name for name, _ in sse_events(response.text)]
    assert names[-1] == "error"
    assert "message_stop" not in names
    routing.gateway.flush_audit()
    assert probe.seen == [(False, "upstream_protocol_error")]


def test_stream_closed_before_first_chunk_fails_over(routing, fallback, probe):
    primary, backup = fallback
    routing.fake.enqueue(OPENAI_PATH, {"chunks": [], "then": "close"})

    response = routing.chat(primary.name, stream=True)

    events = sse_events(response.text)
    assert response.status_code == 200
    assert response.headers["x-nexus-model"] == backup.name
    assert response.headers["x-nexus-attempts"] == "2"
    assert events[-1][1] == "[DONE]"
    assert routing.upstream_models() == ["gpt-4.1", "claude-sonnet-4-5"]
    routing.gateway.flush_audit()
    assert probe.seen == [(True, "")]


def test_stream_without_first_chunk_in_time_fails_over(routing):
    primary = routing.model("gpt-4.1")
    backup = routing.model("claude-sonnet-4-5", anthropic=True)
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        timeout_seconds=0.3,
    )
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "headers": {"content-type": "text/event-stream"},
            "chunks": ["", 'data: {"choices": []}\n\n', "data: [DONE]\n\n"],
            "chunk_delay": 2,
        },
    )

    response = routing.chat(primary.name, stream=True)

    assert response.status_code == 200
    assert response.headers["x-nexus-model"] == backup.name
    attempts = routing.audit(response).details["attempts"]
    assert attempts[0]["error"] == "upstream_timeout"


def test_cut_stream_counts_against_target_health(routing, fallback, gateway):
    primary, _ = fallback
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "reply": {"text": "one two three four"},
            "chunk_delay": 0.05,
            "close_after": 2,
        },
    )

    routing.chat(primary.name, stream=True)
    gateway.flush_audit()

    health = gateway.runtime.router.health.get(f"{primary.pk}:{primary.name}")
    assert health.requests == 1
    assert health.failures == 1
