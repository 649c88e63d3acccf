import json

import orjson

from nexus.engine.canonical import validate_chat_body
from nexus.engine.ingress.anthropic import AnthropicIngress
from nexus.engine.providers.anthropic import (
    AnthropicAdapter,
    NativeStreamObserver,
    usage_from_native,
)
from nexus.engine.snapshot import ConnectionEntry
from nexus.engine.sse import SSEParser

CONNECTION = ConnectionEntry(
    id=1,
    name="anthropic-main",
    provider_type="anthropic",
    base_url="http://fake-anthropic.test",
    credential="provider-key",
)
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
TOOL = {
    "name": "get_weather",
    "description": "Current weather for one city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
ANTHROPIC_BODY = {
    "model": "claude-alias",
    "max_tokens": 16000,
    "system": [
        {"type": "text", "text": "Rule one."},
        {"type": "text", "text": "Rule two."},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where this photo was taken?"},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": PNG_BASE64,
                    },
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "Looks like Paris.",
                    "signature": "sig-1",
                },
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Lyon"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "timeout",
                    "is_error": True,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "tools": [TOOL],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 10000},
    "stop_sequences": ["END"],
    "metadata": {"user_id": "user-7"},
    "top_k": 20,
    "temperature": 1,
}


def event(data: dict) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"


STREAM = "".join(
    event(item)
    for item in [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01RT",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-sonnet-4-5-20250929",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 3,
                    "cache_read_input_tokens": 12304,
                    "output_tokens": 1,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Plan."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig-9"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "text", "text": ""},
        },
        {"type": "ping"},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Both: "},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_a",
                "name": "get_weather",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city":"Paris"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_b",
                "name": "get_weather",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": '{"city":'},
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": '"Rome"}'},
        },
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 96},
        },
        {"type": "message_stop"},
    ]
)


def events(data: bytes) -> list[dict]:
    return [json.loads(item.data) for item in SSEParser().feed(data)]


def accumulate(data: bytes) -> dict:
    """Rebuild a message from Anthropic events, the way a client does."""
    message: dict = {}
    for item in events(data):
        if item["type"] == "message_start":
            message = item["message"]
        elif item["type"] == "content_block_start":
            message["content"].append(dict(item["content_block"]))
        elif item["type"] == "content_block_delta":
            block, delta = message["content"][item["index"]], item["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["partial"] = block.get("partial", "") + delta["partial_json"]
        elif item["type"] == "message_delta":
            message.update(item["delta"])
            message["usage"].update(item["usage"])
    for block in message["content"]:
        if "partial" in block:
            block["input"] = json.loads(block.pop("partial"))
    return message


def test_anthropic_request_survives_canonical_form():
    request = AnthropicIngress().decode_chat(ANTHROPIC_BODY)

    upstream = AnthropicAdapter(CONNECTION).build_chat_request(
        request, "claude-sonnet-4-5-20250929"
    )
    body = orjson.loads(upstream.body)

    assert body["model"] == "claude-sonnet-4-5-20250929"
    for name in (
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "stop_sequences",
        "metadata",
        "top_k",
    ):
        assert body[name] == ANTHROPIC_BODY[name], name
    assert body["messages"] == ANTHROPIC_BODY["messages"]
    assert body["temperature"] == 1


def test_openai_request_survives_anthropic_form():
    openai_body = {
        "model": "alias",
        "max_tokens": 300,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city":"Paris"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": TOOL["input_schema"]},
            }
        ],
        "tool_choice": "required",
        "stop": ["END"],
        "user": "user-7",
    }
    upstream = AnthropicAdapter(CONNECTION).build_chat_request(
        validate_chat_body(openai_body), "claude"
    )
    anthropic_body = orjson.loads(upstream.body)

    back = AnthropicIngress().decode_chat(anthropic_body).body

    assert back["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city":"Paris"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
    ]
    assert back["tools"] == openai_body["tools"]
    assert back["tool_choice"] == "required"
    assert back["stop"] == ["END"]
    assert back["user"] == "user-7"
    assert back["max_tokens"] == 300


def test_anthropic_answer_survives_canonical_form():
    original = {
        "id": "msg_01RT",
        "type": "message",
        "role": "assistant",
        "model": "claude-alias",
        "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": "sig-9"},
            {"type": "text", "text": "Both: "},
            {
                "type": "tool_use",
                "id": "toolu_a",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 3,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 12304,
            "output_tokens": 550,
        },
    }
    request = AnthropicIngress().decode_chat(
        {
            "model": "claude-alias",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "q"}],
        }
    )

    result = AnthropicAdapter(CONNECTION).parse_chat_response(
        orjson.dumps(original), request
    )
    encoded = AnthropicIngress().encode_chat(result, request)

    assert encoded == original


def test_anthropic_stream_survives_canonical_form():
    request = AnthropicIngress().decode_chat(
        {
            "model": "claude-alias",
            "max_tokens": 1024,
            "stream": True,
            "messages": [{"role": "user", "content": "q"}],
        }
    )
    decoder = AnthropicAdapter(CONNECTION).chat_stream_decoder(request)
    encoder = AnthropicIngress().chat_stream_encoder(request)

    data = b""
    for byte in STREAM.encode():
        data += b"".join(encoder.encode(item) for item in decoder.feed(bytes([byte])))
    data += encoder.finish()

    expected = accumulate(STREAM.encode())
    rebuilt = accumulate(data)
    assert rebuilt["content"] == expected["content"]
    assert rebuilt["stop_reason"] == "tool_use"
    assert rebuilt["id"] == "msg_01RT"
    assert rebuilt["model"] == "claude-alias"
    assert rebuilt["usage"] == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 12304,
        "output_tokens": 96,
    }


def test_native_request_replaces_only_the_model():
    body = {
        "model": "claude-37",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "manual", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": "Summarise chapter 2."}],
        "stream": True,
    }

    upstream = AnthropicAdapter(CONNECTION).build_native_request(
        body, "claude-3-7-sonnet-20250219", beta="prompt-caching-2024-07-31"
    )

    sent = orjson.loads(upstream.body)
    assert sent == {**body, "model": "claude-3-7-sonnet-20250219"}
    assert body["model"] == "claude-37"
    assert upstream.url == "http://fake-anthropic.test/v1/messages"
    assert upstream.headers["x-api-key"] == "provider-key"
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert upstream.headers["accept"] == "text/event-stream"


def test_native_observer_reads_usage_byte_by_byte():
    observer = NativeStreamObserver()

    for byte in STREAM.encode():
        observer.feed(bytes([byte]))

    assert observer.finished is True
    assert observer.stop_reason == "tool_use"
    assert observer.usage.input_tokens == 12307
    assert observer.usage.cached_tokens == 12304
    assert observer.usage.output_tokens == 96
    assert observer.error is None


def test_native_observer_records_errors_and_skips_garbage():
    observer = NativeStreamObserver()
    error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }

    observer.feed(b"event: message_start\ndata: {broken\n\n")
    observer.feed(event(error).encode())

    assert observer.finished is False
    assert observer.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_observer_reads_unterminated_event():
    observer = NativeStreamObserver()

    observer.feed(b'event: message_stop\ndata: {"type":"message_stop"}')
    observer.finish()

    assert observer.finished is True


def test_usage_from_native_counts_cache_writes_once():
    body = {
        "usage": {
            "input_tokens": 3,
            "cache_creation_input_tokens": 12304,
            "cache_read_input_tokens": 0,
            "output_tokens": 550,
        }
    }

    usage = usage_from_native(body)

    assert usage.input_tokens == 12307
    assert usage.cache_write_tokens == 12304
    assert usage.cached_tokens == 0
    assert usage.output_tokens == 550
    assert usage.reported is True


def test_adapter_exposes_native_helpers():
    adapter = AnthropicAdapter(CONNECTION)
    body = {
        "usage": {"input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 2}
    }

    observer = adapter.native_stream_observer()
    observer.feed(STREAM.encode())
    usage = adapter.usage_from_native(body)

    assert observer.finished is True
    assert observer.usage.output_tokens == 96
    assert usage.input_tokens == 12
    assert usage.cached_tokens == 7
