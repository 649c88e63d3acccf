import json

import anthropic
import pytest

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "number"}},
        "required": ["city", "days"],
    },
}


def user(text):
    return [{"role": "user", "content": text}]


def sse_events(text):
    """Return (event name, payload) pairs from raw server-sent events."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_messages_echo_and_usage(anthropic_client):
    message = anthropic_client.messages.create(
        model="claude-test",
        max_tokens=100,
        system="you are terse",
        messages=user("hello claude"),
    )

    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello claude"
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-test"
    assert message.usage.input_tokens == 5
    assert message.usage.output_tokens == 3
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0


def test_messages_tool_use_block(anthropic_client):
    message = anthropic_client.messages.create(
        model="claude-test",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=user("call get_weather for Paris"),
    )

    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == {"city": "test", "days": 1.0}
    assert block.id.startswith("toolu_")


def test_messages_after_tool_result_is_text(anthropic_client):
    messages = [
        *user("call get_weather"),
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
            ],
        },
    ]

    message = anthropic_client.messages.create(
        model="claude-test", max_tokens=100, tools=[WEATHER_TOOL], messages=messages
    )

    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "Echo: call get_weather"
    assert message.usage.input_tokens == 3


def test_messages_max_tokens_stop_reason(anthropic_client):
    message = anthropic_client.messages.create(
        model="claude-test", max_tokens=2, messages=user("many words here")
    )

    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "Echo: many"


def test_messages_stream_text(anthropic_client):
    with anthropic_client.messages.stream(
        model="claude-test", max_tokens=100, messages=user("stream me please")
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert pieces == ["Echo: ", "stream ", "me ", "please"]
    assert final.content[0].text == "Echo: stream me please"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


def test_messages_stream_raw_event_sequence(http):
    response = http.post(
        "/v1/messages",
        headers=HEADERS,
        json={"model": "m", "max_tokens": 50, "messages": user("hi"), "stream": True},
    )

    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(payload["type"] == name for name, payload in events)
    assert events[0][1]["message"]["content"] == []
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "Echo: "}
    assert events[6][1]["delta"]["stop_reason"] == "end_turn"
    assert events[6][1]["usage"] == {"output_tokens": 2}
    assert response.headers["request-id"].startswith("req_")


def test_messages_stream_tool_use_input_json_deltas(http):
    body = {
        "model": "m",
        "max_tokens": 50,
        "tools": [WEATHER_TOOL],
        "messages": user("call get_weather"),
        "stream": True,
    }

    response = http.post("/v1/messages", headers=HEADERS, json=body)

    events = [payload for _, payload in sse_events(response.text)]
    start = next(event for event in events if event["type"] == "content_block_start")
    partials = [
        event["delta"]["partial_json"]
        for event in events
        if event["type"] == "content_block_delta"
    ]
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["input"] == {}
    assert len(partials) > 1
    assert json.loads("".join(partials)) == {"city": "test", "days": 1.0}


def test_messages_stream_tool_use_through_sdk(anthropic_client):
    with anthropic_client.messages.stream(
        model="claude-test",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=user("call get_weather twice in parallel"),
    ) as stream:
        final = stream.get_final_message()

    blocks = final.content
    assert [block.type for block in blocks] == ["tool_use", "tool_use"]
    assert blocks[0].id != blocks[1].id
    assert blocks[1].input == {"city": "test", "days": 1.0}
    assert final.stop_reason == "tool_use"


def test_messages_thinking_block_streams(anthropic_client):
    with anthropic_client.messages.stream(
        model="claude-test",
        max_tokens=100,
        thinking={"type": "enabled", "budget_tokens": 64},
        messages=user("deep thought"),
    ) as stream:
        event_types = [event.type for event in stream]
        final = stream.get_final_message()

    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == "Thinking about: deep thought"
    assert final.content[0].signature
    assert final.content[1].text == "Echo: deep thought"
    assert "thinking" in event_types
    assert "signature" in event_types
    assert final.usage.output_tokens == 4 + 3


def test_count_tokens(anthropic_client):
    result = anthropic_client.messages.count_tokens(
        model="claude-test", system="sys", messages=user("a b c")
    )

    assert result.input_tokens == 4


def test_messages_without_max_tokens_is_rejected(http):
    response = http.post(
        "/v1/messages", headers=HEADERS, json={"model": "m", "messages": user("hi")}
    )

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_scripted_usage_maps_cache_fields(anthropic_client, fake_provider):
    usage = {"input_tokens": 100, "cached_tokens": 60, "cache_creation_tokens": 30}
    fake_provider.enqueue("/v1/messages", {"reply": {"usage": usage}})

    message = anthropic_client.messages.create(
        model="claude-test", max_tokens=10, messages=user("hi")
    )

    assert message.usage.input_tokens == 10
    assert message.usage.cache_read_input_tokens == 60
    assert message.usage.cache_creation_input_tokens == 30


def test_overloaded_529_raises_overloaded_error(anthropic_client, fake_provider):
    fake_provider.enqueue(
        "/v1/messages",
        {"status": 529, "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )

    with pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_client.messages.create(model="m", max_tokens=10, messages=user("hi"))

    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert caught.value.body["type"] == "error"


def test_overloaded_then_success_with_sdk_retry(fake_provider):
    client = anthropic.Anthropic(
        base_url=fake_provider.anthropic_base, api_key="k", max_retries=1
    )
    fake_provider.enqueue(
        "/v1/messages",
        {
            "status": 529,
            "headers": {"retry-after-ms": "1"},
            "error": "overloaded_error",
        },
    )

    message = client.messages.create(model="m", max_tokens=10, messages=user("retry"))

    assert message.content[0].text == "Echo: retry"
    assert len(fake_provider.requests) == 2
