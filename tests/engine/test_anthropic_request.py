import orjson
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.anthropic import AnthropicAdapter
from nexus.engine.providers.anthropic_request import (
    DEFAULT_MAX_TOKENS,
    RESPONSE_FORMAT_TOOL,
)
from nexus.engine.snapshot import ConnectionEntry

PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for one city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def adapter(**options) -> AnthropicAdapter:
    connection = ConnectionEntry(
        id=1,
        name="anthropic-main",
        provider_type="anthropic",
        base_url="http://fake-anthropic.test/",
        credential="provider-key",
        options=options,
    )
    return AnthropicAdapter(connection)


def build(body: dict, **options) -> dict:
    body = {"model": "claude-chat", **body}
    upstream = adapter(**options).build_chat_request(
        validate_chat_body(body), "claude-sonnet-4-5-20250929"
    )
    return orjson.loads(upstream.body)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_request_url_and_headers():
    request = validate_chat_body({"model": "m", "messages": [user("hi")]})

    upstream = adapter().build_chat_request(request, "claude-haiku-4-5")

    assert upstream.method == "POST"
    assert upstream.url == "http://fake-anthropic.test/v1/messages"
    assert upstream.headers["x-api-key"] == "provider-key"
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.headers["content-type"] == "application/json"
    assert "authorization" not in upstream.headers


def test_streaming_request_accepts_event_stream():
    body = build({"messages": [user("hi")], "stream": True})
    upstream = adapter().build_chat_request(
        validate_chat_body({"model": "m", "messages": [user("hi")], "stream": True}),
        "claude",
    )

    assert body["stream"] is True
    assert upstream.headers["accept"] == "text/event-stream"


def test_system_messages_joined_in_order():
    body = build(
        {
            "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "You are a billing assistant."},
                {"role": "developer", "content": "Always answer in French."},
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Never reveal account numbers."}
                    ],
                },
                user("What is my balance?"),
            ],
        }
    )

    assert body["system"] == [
        {"type": "text", "text": "You are a billing assistant."},
        {"type": "text", "text": "Always answer in French."},
        {"type": "text", "text": "Never reveal account numbers."},
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is my balance?"}]}
    ]
    assert body["max_tokens"] == 100


def test_system_message_mid_conversation_is_kept():
    body = build(
        {
            "messages": [
                {"role": "system", "content": "First rule."},
                user("Hi"),
                {"role": "assistant", "content": "Hello."},
                {"role": "system", "content": "Late rule."},
                user("Go on"),
            ]
        }
    )

    assert [block["text"] for block in body["system"]] == ["First rule.", "Late rule."]
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]


def test_no_system_field_without_system_messages():
    body = build({"messages": [user("hi")]})

    assert "system" not in body


def test_empty_system_content_sends_no_empty_text():
    body = build({"messages": [{"role": "system", "content": ""}, user("hi")]})

    assert "system" not in body


def test_images_become_base64_and_url_sources_in_order():
    content = [
        {"type": "text", "text": "Compare these two images."},
        {
            "type": "image_url",
            "image_url": {
                "url": f"data:image/png;base64,{PNG_BASE64}",
                "detail": "low",
            },
        },
        {
            "type": "image_url",
            "image_url": {"url": "https://images.example.test/cat.jpg"},
        },
    ]

    body = build({"messages": [{"role": "user", "content": content}]})

    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these two images."},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
        },
        {
            "type": "image",
            "source": {"type": "url", "url": "https://images.example.test/cat.jpg"},
        },
    ]
    assert b"detail" not in orjson.dumps(body)
    assert b"data:image" not in orjson.dumps(body)


@pytest.mark.parametrize(
    "url",
    [
        "data:image/tiff;base64,AAAA",
        "data:image/png,AAAA",
        "ftp://images.example.test/cat.jpg",
        "",
    ],
)
def test_unsupported_or_malformed_image_is_400(url):
    content = [{"type": "image_url", "image_url": {"url": url}}]

    with pytest.raises(InvalidRequestError) as raised:
        build({"messages": [{"role": "user", "content": content}]})

    assert raised.value.status == 400
    assert raised.value.param.startswith("messages[0].content[0]")


def test_pdf_file_part_becomes_document_block():
    part = {
        "type": "file",
        "file": {
            "filename": "a.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0=",
        },
    }

    body = build({"messages": [{"role": "user", "content": [part]}]})

    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": "JVBERi0=",
            },
            "title": "a.pdf",
        }
    ]


def test_max_tokens_default_and_max_completion_tokens():
    assert build({"messages": [user("hi")]})["max_tokens"] == DEFAULT_MAX_TOKENS
    assert (
        build({"messages": [user("hi")]}, default_max_tokens=900)["max_tokens"] == 900
    )
    both = {"messages": [user("hi")], "max_tokens": 10, "max_completion_tokens": 20}
    assert build(both)["max_tokens"] == 20


def test_sampling_stop_and_user_fields():
    body = build(
        {
            "messages": [user("hi")],
            "temperature": 0.3,
            "top_p": 0.9,
            "stop": "END",
            "user": "user-42",
            "seed": 7,
            "presence_penalty": 0.5,
        }
    )

    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert "seed" not in body
    assert "presence_penalty" not in body


def test_stop_list_and_temperature_above_one():
    body = build({"messages": [user("hi")], "stop": ["a", "b"], "temperature": 1.7})

    assert body["stop_sequences"] == ["a", "b"]
    assert body["temperature"] == 1.0


def test_n_above_one_is_400():
    with pytest.raises(InvalidRequestError):
        build({"messages": [user("hi")], "n": 2})


def test_tools_translate_to_input_schema():
    body = build(
        {"messages": [user("weather?")], "max_tokens": 512, "tools": [WEATHER_TOOL]}
    )

    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for one city.",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_mapping(choice, expected):
    body = build(
        {"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": choice}
    )

    assert body["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use():
    body = build(
        {"messages": [user("x")], "tools": [WEATHER_TOOL], "parallel_tool_calls": False}
    )

    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_tool_calls_and_parallel_results_translate():
    messages = [
        user("Weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": "I'll check both.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                },
                {
                    "id": "call.2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {
            "role": "tool",
            "tool_call_id": "call.2",
            "content": [{"type": "text", "text": "unknown city"}],
            "is_error": True,
        },
        user("Thanks"),
    ]

    body = build({"messages": messages, "tools": [WEATHER_TOOL]})

    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "I'll check both."},
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18 C"},
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "unknown city"}],
            "is_error": True,
        },
        {"type": "text", "text": "Thanks"},
    ]


def test_consecutive_user_messages_merge():
    body = build(
        {"messages": [user("one"), user("two"), {"role": "assistant", "content": "ok"}]}
    )

    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "one"},
                {"type": "text", "text": "two"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", "not json"])
def test_invalid_tool_call_arguments_are_400(arguments):
    messages = [
        user("x"),
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "f", "arguments": arguments},
                }
            ],
        },
    ]

    with pytest.raises(InvalidRequestError) as raised:
        build({"messages": messages})

    assert raised.value.param == "messages[1].tool_calls[0].function.arguments"


def test_only_system_messages_is_400():
    with pytest.raises(InvalidRequestError):
        build({"messages": [{"role": "system", "content": "rules"}]})


def test_json_schema_response_format_becomes_forced_tool():
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
        "required": ["city", "temp_c"],
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "weather_report", "strict": True, "schema": schema},
    }

    body = build({"messages": [user("Report it.")], "response_format": response_format})

    assert len(body["tools"]) == 1
    assert body["tools"][0]["name"] == RESPONSE_FORMAT_TOOL
    assert body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": RESPONSE_FORMAT_TOOL}
    assert "response_format" not in body


def test_json_object_response_format_uses_open_object_schema():
    body = build({"messages": [user("x")], "response_format": {"type": "json_object"}})

    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"] == {"type": "tool", "name": RESPONSE_FORMAT_TOOL}


def test_response_format_with_client_tools_requires_any_tool():
    body = build(
        {
            "messages": [user("x")],
            "tools": [WEATHER_TOOL],
            "response_format": {"type": "json_object"},
        }
    )

    assert [tool["name"] for tool in body["tools"]] == [
        "get_weather",
        RESPONSE_FORMAT_TOOL,
    ]
    assert body["tool_choice"] == {"type": "any"}


def test_text_response_format_adds_nothing():
    body = build({"messages": [user("x")], "response_format": {"type": "text"}})

    assert "tools" not in body


def test_reasoning_effort_sets_thinking_budget():
    body = build({"messages": [user("x")], "reasoning_effort": "medium"})

    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + 8192


def test_reasoning_budget_stays_below_caller_max_tokens():
    body = build(
        {"messages": [user("x")], "reasoning_effort": "high", "max_tokens": 5000}
    )

    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4999}
    assert body["max_tokens"] == 5000


def test_small_max_tokens_leaves_thinking_off():
    body = build(
        {"messages": [user("x")], "reasoning_effort": "low", "max_tokens": 500}
    )

    assert "thinking" not in body


def test_reasoning_effort_none_and_unknown():
    assert "thinking" not in build(
        {"messages": [user("x")], "reasoning_effort": "none"}
    )
    with pytest.raises(InvalidRequestError):
        build({"messages": [user("x")], "reasoning_effort": "extreme"})


def test_adaptive_thinking_mode_sends_effort():
    body = build(
        {"messages": [user("x")], "reasoning_effort": "high"}, thinking_mode="adaptive"
    )

    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "high"}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_thinking_with_response_format_asks_in_system_prompt():
    body = build(
        {
            "messages": [user("x")],
            "reasoning_effort": "low",
            "response_format": {"type": "json_object"},
        }
    )

    assert "tool_choice" not in body
    assert RESPONSE_FORMAT_TOOL in body["system"][-1]["text"]


def test_thinking_blocks_first_unsigned_dropped():
    assistant = {
        "role": "assistant",
        "content": "Answer.",
        "reasoning_content": "Let me think.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "thinking", "thinking": "from elsewhere", "signature": ""},
        ],
    }

    body = build({"messages": [user("q"), assistant, user("more")]})

    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Answer."},
    ]


def test_exact_thinking_from_extensions_wins():
    request = validate_chat_body(
        {
            "model": "m",
            "messages": [user("x")],
            "max_tokens": 3000,
            "reasoning_effort": "low",
        }
    )
    request.extensions["anthropic"] = {
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "top_k": 5,
    }

    body = orjson.loads(adapter().build_chat_request(request, "claude").body)

    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["top_k"] == 5
    assert body["max_tokens"] == 3000


def test_function_role_is_400():
    with pytest.raises(InvalidRequestError):
        build(
            {"messages": [user("x"), {"role": "function", "name": "f", "content": "1"}]}
        )
