import orjson
import pytest

from nexus.engine.canonical import ChatResult, Usage
from nexus.engine.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
    RequestTooLargeError,
)
from nexus.engine.ingress.anthropic import AnthropicIngress

PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
ADD_TOOL = {
    "name": "add_numbers",
    "description": "Add two numbers.",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}


def decode(**body):
    payload = {
        "model": "claude-chat",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "hi"}],
        **body,
    }
    return AnthropicIngress().decode_chat(payload)


def result(message: dict, finish_reason="stop", usage=None, **choice) -> ChatResult:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, **choice}
        ],
    }
    return ChatResult(body=body, usage=usage or Usage(input_tokens=10, output_tokens=5))


def test_basic_fields_decode():
    request = decode(
        temperature=0.2,
        top_p=0.8,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "user-9"},
        stream=True,
    )

    assert request.model == "claude-chat"
    assert request.stream is True
    assert request.include_usage is True
    assert request.body["max_tokens"] == 200
    assert request.body["temperature"] == 0.2
    assert request.body["top_p"] == 0.8
    assert request.body["stop"] == ["END"]
    assert request.body["user"] == "user-9"
    assert request.extensions["anthropic"]["top_k"] == 40
    assert request.messages == [{"role": "user", "content": "hi"}]


def test_system_string_and_blocks():
    as_string = decode(system="Be brief.")
    as_blocks = decode(
        system=[
            {
                "type": "text",
                "text": "Rule one.",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "Rule two."},
        ]
    )

    assert as_string.messages[0] == {"role": "system", "content": "Be brief."}
    assert as_blocks.messages[0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "Rule one."},
            {"type": "text", "text": "Rule two."},
        ],
    }


def test_image_blocks_become_image_url_parts():
    content = [
        {"type": "text", "text": "Compare."},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
        },
        {
            "type": "image",
            "source": {"type": "url", "url": "https://images.example.test/cat.jpg"},
        },
    ]

    request = decode(messages=[{"role": "user", "content": content}])

    assert request.messages[0]["content"] == [
        {"type": "text", "text": "Compare."},
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"},
        },
        {
            "type": "image_url",
            "image_url": {"url": "https://images.example.test/cat.jpg"},
        },
    ]


def test_tool_use_and_tool_results_decode():
    messages = [
        {"role": "user", "content": "Add 17 and 25, and 1 and 2."},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Adding."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "add_numbers",
                    "input": {"a": 17, "b": 25},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "add_numbers",
                    "input": {"a": 1, "b": 2},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "overflow"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Now explain."},
            ],
        },
    ]

    request = decode(messages=messages, tools=[ADD_TOOL])

    assistant, first, second, follow_up = request.messages[1:]
    assert assistant["content"] == "Adding."
    assert [call["id"] for call in assistant["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert orjson.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "a": 17,
        "b": 25,
    }
    assert first == {"role": "tool", "tool_call_id": "toolu_1", "content": "42"}
    assert second == {
        "role": "tool",
        "tool_call_id": "toolu_2",
        "content": [{"type": "text", "text": "overflow"}],
        "is_error": True,
    }
    assert follow_up == {
        "role": "user",
        "content": [{"type": "text", "text": "Now explain."}],
    }


def test_assistant_with_only_tool_use_has_null_content():
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    ]

    request = decode(messages=messages)

    assert request.messages[1]["content"] is None
    assert request.messages[2] == {"role": "tool", "tool_call_id": "t", "content": ""}


def test_assistant_thinking_blocks_are_carried():
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Answer."},
        ],
    }

    request = decode(
        messages=[
            {"role": "user", "content": "q"},
            assistant,
            {"role": "user", "content": "more"},
        ]
    )

    message = request.messages[1]
    assert message["content"] == "Answer."
    assert message["reasoning_content"] == "Hmm."
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]


def test_tools_and_tool_choice_decode():
    request = decode(
        tools=[ADD_TOOL], tool_choice={"type": "any", "disable_parallel_tool_use": True}
    )

    assert request.tools == [
        {
            "type": "function",
            "function": {
                "name": "add_numbers",
                "parameters": ADD_TOOL["input_schema"],
                "description": "Add two numbers.",
            },
        }
    ]
    assert request.body["tool_choice"] == "required"
    assert request.body["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "add_numbers"},
            {"type": "function", "function": {"name": "add_numbers"}},
        ),
    ],
)
def test_tool_choice_types(choice, expected):
    request = decode(tools=[ADD_TOOL], tool_choice=choice)

    assert request.body["tool_choice"] == expected
    assert "parallel_tool_calls" not in request.body


def test_thinking_budget_kept_exactly():
    thinking = {"type": "enabled", "budget_tokens": 10000}

    request = decode(thinking=thinking, max_tokens=16000)

    assert request.body["reasoning_effort"] == "medium"
    assert request.extensions["anthropic"]["thinking"] == thinking


@pytest.mark.parametrize(
    ("budget", "effort"),
    [(1024, "low"), (4096, "low"), (8191, "low"), (8192, "medium"), (20000, "high")],
)
def test_budget_to_effort_table(budget, effort):
    request = decode(
        thinking={"type": "enabled", "budget_tokens": budget}, max_tokens=30000
    )

    assert request.body["reasoning_effort"] == effort


def test_adaptive_thinking_and_effort():
    request = decode(thinking={"type": "adaptive"}, output_config={"effort": "max"})
    default = decode(thinking={"type": "adaptive"})
    disabled = decode(thinking={"type": "disabled"})

    assert request.body["reasoning_effort"] == "high"
    assert request.extensions["anthropic"]["effort"] == "max"
    assert default.body["reasoning_effort"] == "high"
    assert "reasoning_effort" not in disabled.body
    assert disabled.extensions["anthropic"]["thinking"] == {"type": "disabled"}


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


@pytest.mark.parametrize(
    "field",
    [
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},
    ],
    ids=["output_config", "beta_output_format"],
)
def test_output_format_becomes_response_format(field):
    schema = SCHEMA

    request = decode(**field)

    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"model": 123}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        ({"stream": "yes"}, "stream"),
        ({"temperature": "hot"}, "temperature"),
        ({"system": 5}, "system"),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"metadata": "x"}, "metadata"),
        ({"metadata": {"user_id": 5}}, "metadata.user_id"),
        ({"tools": {"name": "f"}}, "tools"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools[0].type",
        ),
        ({"tools": [ADD_TOOL], "tool_choice": "auto"}, "tool_choice"),
        ({"tools": [ADD_TOOL], "tool_choice": {"type": "tool"}}, "tool_choice.type"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "sometimes"}}, "thinking.type"),
        ({"thinking": "on"}, "thinking"),
        ({"top_k": 1.5}, "top_k"),
        ({"output_config": {"effort": "huge"}}, "output_config.effort"),
        (
            {"output_config": {"format": {"type": "json_schema"}}},
            "output_config.format.schema",
        ),
        ({"output_format": {"type": "json_object"}}, "output_format"),
        (
            {
                "output_format": {"type": "json_schema", "schema": {}},
                "output_config": {"format": {"type": "json_schema", "schema": {}}},
            },
            "output_format",
        ),
    ],
)
def test_wrong_types_are_400(body, param):
    with pytest.raises(InvalidRequestError) as raised:
        decode(**body)

    assert raised.value.status == 400
    assert raised.value.type == "invalid_request_error"
    assert raised.value.param == param
    assert raised.value.message


def test_body_that_is_not_an_object_is_400():
    for body in ([], "text", None, 3):
        with pytest.raises(InvalidRequestError):
            AnthropicIngress().decode_chat(body)


def test_tool_result_block_errors_name_the_block():
    content = [{"type": "tool_result", "content": "42"}]

    with pytest.raises(InvalidRequestError) as raised:
        decode(messages=[{"role": "user", "content": content}])

    assert raised.value.param == "messages[0].content[0].tool_use_id"


def test_encode_text_answer():
    request = decode()

    message = AnthropicIngress().encode_chat(
        result({"role": "assistant", "content": "Hello."}), request
    )

    assert message["id"].startswith("msg_")
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["model"] == "claude-chat"
    assert message["content"] == [{"type": "text", "text": "Hello."}]
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_encode_stop_reason_mapping(finish_reason, stop_reason):
    message = AnthropicIngress().encode_chat(
        result({"role": "assistant", "content": "x"}, finish_reason), decode()
    )

    assert message["stop_reason"] == stop_reason


def test_encode_matched_stop_sequence():
    answer = result({"role": "assistant", "content": "x"}, "stop", stop_reason="END")

    message = AnthropicIngress().encode_chat(answer, decode(stop_sequences=["END"]))

    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "END"


def test_encode_tool_calls_and_thinking():
    reply = {
        "role": "assistant",
        "content": "Adding.",
        "reasoning_content": "Plan.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "Plan.", "signature": "sig"}
        ],
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add_numbers", "arguments": '{"a":17,"b":25}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "add_numbers", "arguments": "not json"},
            },
        ],
    }

    message = AnthropicIngress().encode_chat(result(reply, "tool_calls"), decode())

    assert message["content"] == [
        {"type": "thinking", "thinking": "Plan.", "signature": "sig"},
        {"type": "text", "text": "Adding."},
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "add_numbers",
            "input": {"a": 17, "b": 25},
        },
        {"type": "tool_use", "id": "call_2", "name": "add_numbers", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_encode_reasoning_without_blocks_gets_empty_signature():
    reply = {"role": "assistant", "content": "A", "reasoning_content": "R"}

    message = AnthropicIngress().encode_chat(result(reply), decode())

    assert message["content"][0] == {
        "type": "thinking",
        "thinking": "R",
        "signature": "",
    }


def test_encode_usage_splits_cached_input():
    usage = Usage(input_tokens=12307, output_tokens=550, cached_tokens=12304)
    written = Usage(input_tokens=12307, output_tokens=550, cache_write_tokens=12304)

    read_message = AnthropicIngress().encode_chat(
        result({"content": "x"}, usage=usage), decode()
    )
    write_message = AnthropicIngress().encode_chat(
        result({"content": "x"}, usage=written), decode()
    )

    assert read_message["usage"] == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 12304,
        "output_tokens": 550,
    }
    assert write_message["usage"]["input_tokens"] == 3
    assert write_message["usage"]["cache_creation_input_tokens"] == 12304


def test_encode_keeps_anthropic_message_id():
    answer = result({"content": "x"})
    answer.body["id"] = "msg_01KEEP"

    message = AnthropicIngress().encode_chat(answer, decode())

    assert message["id"] == "msg_01KEEP"


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (InvalidRequestError("bad"), "invalid_request_error"),
        (AuthenticationError("no key"), "authentication_error"),
        (PermissionDeniedError("no"), "permission_error"),
        (NotFoundError("gone"), "not_found_error"),
        (RequestTooLargeError("big"), "request_too_large"),
        (RateLimitError("slow down"), "rate_limit_error"),
        (ProviderTimeoutError("late"), "api_error"),
        (
            ProviderStatusError(
                "Overloaded", upstream_status=529, error_type="overloaded_error"
            ),
            "overloaded_error",
        ),
        (
            ProviderStatusError("busy", upstream_status=503, error_type="api_error"),
            "api_error",
        ),
    ],
)
def test_error_body_types(error, error_type):
    body = AnthropicIngress().error_body(error)

    assert body == {
        "type": "error",
        "error": {"type": error_type, "message": error.message},
    }
