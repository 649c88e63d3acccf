"""Streamed responses are stored once complete and replayed as streams in any format."""

import asyncio
import json

import anthropic
import openai
import pytest

from apps.audit.models import AuditEvent
from tests.cache.conftest import chat_body
from tests.support.factories import make_connection, make_model


@pytest.fixture
def client(cache):
    return openai.OpenAI(
        base_url=cache.gateway.openai_base, api_key=cache.key_a.key, max_retries=0
    )


def stream_text(client, model, text, **fields):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        stream=True,
        temperature=0,
        **fields,
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, content


def test_streamed_answer_is_stored_and_replayed_as_stream(cache, client):
    cache.policy()
    first_chunks, first = stream_text(client, cache.chat, "one two three four")

    again_chunks, again = stream_text(client, cache.chat, "one two three four")

    assert first == "Echo: one two three four"
    assert again == first
    assert again_chunks[0].id == first_chunks[0].id
    assert again_chunks[-1].choices[0].finish_reason == "stop"
    assert cache.upstream_calls() == 1


def test_streamed_answer_serves_non_streamed_request(cache, client):
    cache.policy()
    stream_text(client, cache.chat, "stream then json")

    completion = client.chat.completions.create(
        model=cache.chat,
        messages=[{"role": "user", "content": "stream then json"}],
        temperature=0,
    )

    assert completion.choices[0].message.content == "Echo: stream then json"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens > 0
    assert cache.upstream_calls() == 1


def test_non_streamed_answer_replays_as_stream_with_usage(cache, client):
    cache.policy()
    client.chat.completions.create(
        model=cache.chat,
        messages=[{"role": "user", "content": "json then stream"}],
        temperature=0,
    )

    chunks, text = stream_text(
        client,
        cache.chat,
        "json then stream",
        stream_options={"include_usage": True},
    )

    assert text == "Echo: json then stream"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert cache.upstream_calls() == 1


def test_streamed_tool_call_is_replayed_whole(cache, client):
    cache.policy()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"q": {"type": "string"}},
                    "required": ["q"],
                },
            },
        }
    ]
    stream_text(client, cache.chat, "please call lookup", tools=tools)

    completion = client.chat.completions.create(
        model=cache.chat,
        messages=[{"role": "user", "content": "please call lookup"}],
        temperature=0,
        tools=tools,
    )

    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"q": "test"}
    assert cache.upstream_calls() == 1


def test_cut_off_stream_is_not_stored(cache, client):
    cache.policy()
    cache.fake.enqueue("/chat/completions", {"reply": {}, "close_after": 2})
    with pytest.raises(openai.APIError):
        stream_text(client, cache.chat, "this stream breaks")

    _, text = stream_text(client, cache.chat, "this stream breaks")

    assert text == "Echo: this stream breaks"
    assert cache.upstream_calls() == 2


def test_request_after_cut_stream_calls_upstream(cache, client, monkeypatch):
    # The leader's settling is held back, as on a busy gateway: the caller has seen
    # the error event while the stage's on_complete has not run yet.
    layer = type(cache.layer)
    settle = layer.on_complete

    async def slow_on_complete(self, call, request):
        await asyncio.sleep(0.5)
        await settle(self, call, request)

    monkeypatch.setattr(layer, "on_complete", slow_on_complete)
    cache.policy()
    cache.fake.enqueue("/chat/completions", {"reply": {}, "close_after": 2})
    with pytest.raises(openai.APIError):
        stream_text(client, cache.chat, "a stream that breaks early")

    _, text = stream_text(client, cache.chat, "a stream that breaks early")

    assert text == "Echo: a stream that breaks early"
    assert cache.upstream_calls() == 2


def test_anthropic_caller_gets_replay_in_anthropic_format(cache, db_rows):
    connection = make_connection("anthropic", cache.fake.anthropic_base)
    claude = make_model(connection, "claude-sonnet-4-5").name
    cache.policy()
    client = anthropic.Anthropic(
        base_url=cache.gateway.url, api_key=cache.key_a.key, max_retries=0
    )
    messages = [{"role": "user", "content": "hello from claude"}]
    first = client.messages.create(model=claude, max_tokens=100, messages=messages)

    with client.messages.stream(
        model=claude, max_tokens=100, messages=messages
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == first.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.id == first.id
    assert cache.upstream_calls("/messages") == 1


def test_openai_and_anthropic_callers_share_one_entry(cache, db_rows):
    cache.policy()
    openai_client = openai.OpenAI(
        base_url=cache.gateway.openai_base, api_key=cache.key_a.key, max_retries=0
    )
    claude_client = anthropic.Anthropic(
        base_url=cache.gateway.url, api_key=cache.key_a.key, max_retries=0
    )
    openai_client.chat.completions.create(
        model=cache.chat,
        max_tokens=50,
        messages=[{"role": "user", "content": "shared across formats"}],
    )

    message = claude_client.messages.create(
        model=cache.chat,
        max_tokens=50,
        messages=[{"role": "user", "content": "shared across formats"}],
    )

    assert message.content[0].text == "Echo: shared across formats"
    assert cache.upstream_calls() == 1


def chat_once(cache, **fields):
    return cache.post(
        chat_body("poison guard probe", cache.chat, temperature=0, **fields)
    )


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ({"reply": {"finish_reason": "length"}}, "finish_reason_length"),
        (
            {"reply": {"finish_reason": "content_filter"}},
            "finish_reason_content_filter",
        ),
        ({"error": "server_error", "status": 500}, "upstream_error"),
        (
            {
                "json": {
                    "id": "chatcmpl-refused",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "gpt-4o-mini",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "refusal": "I can't help with that.",
                            },
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 5},
                }
            },
            "refusal",
        ),
    ],
)
def test_poisoned_answers_are_never_stored(cache, script, reason):
    cache.policy()
    cache.fake.enqueue("/chat/completions", script)
    bad = chat_once(cache)
    cache.gateway.flush_audit()

    good = chat_once(cache)

    event = AuditEvent.objects.get(request_id=bad.headers["x-request-id"])
    assert event.details["cache"]["stored"] is False
    assert event.details["cache"]["not_stored"] == reason
    assert good.headers["x-nexus-cache"] == "miss"
    assert cache.upstream_calls() == 2


def test_replayed_stream_keeps_thinking_and_stop_sequence(cache, db_rows):
    connection = make_connection("anthropic", cache.fake.anthropic_base)
    claude = make_model(connection, "claude-sonnet-4-5").name
    cache.policy()
    client = anthropic.Anthropic(
        base_url=cache.gateway.url, api_key=cache.key_a.key, max_retries=0
    )
    request = {
        "model": claude,
        "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "think before you answer"}],
    }
    first = client.messages.create(**request)

    with client.messages.stream(**request) as stream:
        replayed = stream.get_final_message()

    first_thinking = [b for b in first.content if b.type == "thinking"]
    replayed_thinking = [b for b in replayed.content if b.type == "thinking"]
    assert first_thinking
    assert replayed_thinking[0].thinking == first_thinking[0].thinking
    assert replayed_thinking[0].signature == first_thinking[0].signature
    assert replayed.content[-1].text == first.content[-1].text
    assert cache.upstream_calls("/messages") == 1
