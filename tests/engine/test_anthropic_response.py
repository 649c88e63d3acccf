import logging

import orjson
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import ProviderProtocolError
from nexus.engine.providers.anthropic import AnthropicAdapter
from nexus.engine.providers.anthropic_format import FINISH_REASONS
from nexus.engine.providers.anthropic_request import RESPONSE_FORMAT_TOOL
from nexus.engine.providers.base import OptionsError
from nexus.engine.snapshot import ConnectionEntry

CONNECTION = ConnectionEntry(
    id=1,
    name="anthropic-main",
    provider_type="anthropic",
    base_url="http://fake-anthropic.test",
    credential="provider-key",
)


def request(**body):
    return validate_chat_body(
        {"model": "claude-chat", "messages": [{"role": "user", "content": "q"}], **body}
    )


def message(content, stop_reason="end_turn", usage=None, **fields):
    return {
        "id": "msg_01FAKE",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage
        or {
            "input_tokens": 41,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 12,
        },
        **fields,
    }


def parse(body, chat_request=None):
    adapter = AnthropicAdapter(CONNECTION)
    return adapter.parse_chat_response(orjson.dumps(body), chat_request or request())


def test_text_answer_becomes_chat_completion():
    content = [{"type": "text", "text": "Je ne peux pas consulter votre solde."}]

    result = parse(message(content))

    assert result.body["object"] == "chat.completion"
    assert result.body["id"] == "msg_01FAKE"
    choice = result.body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Je ne peux pas consulter votre solde.",
    }
    assert choice["finish_reason"] == "stop"
    assert result.body["usage"]["prompt_tokens"] == 41
    assert result.body["usage"]["completion_tokens"] == 12
    assert result.body["usage"]["total_tokens"] == 53


def test_parallel_tool_calls_in_order():
    content = [
        {"type": "text", "text": "I'll check both cities."},
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
            "input": {"city": "Rome"},
        },
    ]

    result = parse(message(content, stop_reason="tool_use"))

    choice = result.body["choices"][0]
    calls = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check both cities."
    assert [call["id"] for call in calls] == ["toolu_1", "toolu_2"]
    assert calls[0]["type"] == "function"
    assert calls[0]["function"]["name"] == "get_weather"
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert orjson.loads(calls[1]["function"]["arguments"]) == {"city": "Rome"}


def test_tool_calls_only_have_null_content():
    content = [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]

    result = parse(message(content, stop_reason="tool_use"))

    assert result.body["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"), sorted(FINISH_REASONS.items())
)
def test_finish_reason_table(stop_reason, finish_reason):
    content = [{"type": "text", "text": "Rivers have shaped human history"}]
    if stop_reason == "tool_use":
        content.append({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}})

    result = parse(message(content, stop_reason=stop_reason))

    assert result.body["choices"][0]["finish_reason"] == finish_reason


def test_max_tokens_stop_reason_is_length():
    content = [
        {"type": "text", "text": "Rivers have shaped human history since the earliest"}
    ]
    usage = {"input_tokens": 14, "output_tokens": 16}

    result = parse(message(content, "max_tokens", usage), request(max_tokens=16))

    assert result.body["choices"][0]["finish_reason"] == "length"


def test_unknown_stop_reason_is_logged_once(caplog):
    content = [{"type": "text", "text": "x"}]

    with caplog.at_level(logging.WARNING):
        first = parse(message(content, stop_reason="brand_new_reason_a"))
        parse(message(content, stop_reason="brand_new_reason_a"))

    assert first.body["choices"][0]["finish_reason"] == "stop"
    warnings = [
        record
        for record in caplog.records
        if "brand_new_reason_a" in record.getMessage()
    ]
    assert len(warnings) == 1


def test_unknown_stop_reason_at_token_limit_is_length():
    content = [{"type": "text", "text": "cut"}]
    usage = {"input_tokens": 1, "output_tokens": 16}

    result = parse(
        message(content, "brand_new_reason_b", usage), request(max_tokens=16)
    )

    assert result.body["choices"][0]["finish_reason"] == "length"


def test_unknown_stop_reason_with_tools():
    content = [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]

    result = parse(message(content, stop_reason="brand_new_reason_c"))

    assert result.body["choices"][0]["finish_reason"] == "tool_calls"


def test_stop_sequence_is_kept_on_the_choice():
    body = message([{"type": "text", "text": "a"}], stop_reason="stop_sequence")
    body["stop_sequence"] = "END"

    result = parse(body)

    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert result.body["choices"][0]["stop_reason"] == "END"


def test_cache_write_usage_counts_once():
    usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 12304,
        "cache_read_input_tokens": 0,
        "output_tokens": 550,
    }

    result = parse(message([{"type": "text", "text": "Chapter 2."}], usage=usage))

    assert result.usage.input_tokens == 12307
    assert result.usage.cached_tokens == 0
    assert result.usage.cache_write_tokens == 12304
    assert result.usage.output_tokens == 550
    assert result.body["usage"]["prompt_tokens"] == 12307
    assert result.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_cache_read_usage_is_cached_tokens():
    usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 12304,
        "output_tokens": 550,
    }

    result = parse(message([{"type": "text", "text": "Chapter 2."}], usage=usage))

    assert result.usage.input_tokens == 12307
    assert result.usage.cached_tokens == 12304
    assert result.usage.cache_write_tokens == 0
    assert result.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 12304


def test_thinking_tokens_become_reasoning_tokens():
    usage = {
        "input_tokens": 5,
        "output_tokens": 90,
        "output_tokens_details": {"thinking_tokens": 60},
    }

    result = parse(message([{"type": "text", "text": "x"}], usage=usage))

    assert result.usage.reasoning_tokens == 60


def test_response_format_tool_input_becomes_content():
    content = [
        {
            "type": "tool_use",
            "id": "toolu_01JSON",
            "name": RESPONSE_FORMAT_TOOL,
            "input": {"city": "Paris", "temp_c": 18},
        }
    ]
    chat_request = request(response_format={"type": "json_object"})

    result = parse(message(content, stop_reason="tool_use"), chat_request)

    choice = result.body["choices"][0]
    assert orjson.loads(choice["message"]["content"]) == {"city": "Paris", "temp_c": 18}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_response_format_keeps_real_calls():
    content = [
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "get_weather",
            "input": {"city": "Rome"},
        }
    ]
    chat_request = request(response_format={"type": "json_object"})

    result = parse(message(content, stop_reason="tool_use"), chat_request)

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_response_tool_name_without_format():
    content = [
        {"type": "tool_use", "id": "toolu_1", "name": RESPONSE_FORMAT_TOOL, "input": {}}
    ]

    result = parse(message(content, stop_reason="tool_use"))

    assert result.body["choices"][0]["message"]["tool_calls"][0]["id"] == "toolu_1"


def test_thinking_goes_to_reasoning_content_and_thinking_blocks():
    content = [
        {"type": "thinking", "thinking": "Step one.", "signature": "sig-a"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Answer."},
    ]

    result = parse(message(content))

    reply = result.body["choices"][0]["message"]
    assert reply["content"] == "Answer."
    assert reply["reasoning_content"] == "Step one."
    assert reply["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Step one.", "signature": "sig-a"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]


def test_answer_without_content_is_a_protocol_error():
    with pytest.raises(ProviderProtocolError):
        parse({"type": "message"})


def test_non_json_body_protocol_error():
    with pytest.raises(ProviderProtocolError):
        AnthropicAdapter(CONNECTION).parse_chat_response(b"<html>", request())


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (529, "overloaded_error", True),
        (429, "rate_limit_error", True),
        (400, "invalid_request_error", False),
        (401, "authentication_error", False),
        (413, "request_too_large", False),
        (500, "api_error", True),
    ],
)
def test_parse_error_keeps_status_and_type(status, error_type, retryable):
    body = orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": "Overloaded"},
            "request_id": "req_1",
        }
    )

    error = AnthropicAdapter(CONNECTION).parse_error(status, body)

    assert error.status == status
    assert error.type == error_type
    assert error.retryable is retryable
    assert "Overloaded" in error.message


def test_parse_error_without_json_uses_status_type():
    error = AnthropicAdapter(CONNECTION).parse_error(529, b"upstream busy")

    assert error.type == "overloaded_error"
    assert "upstream busy" in error.message


def test_invalid_connection_options_are_rejected():
    for options in (
        {"thinking_mode": "sometimes"},
        {"default_max_tokens": 0},
        {"colour": 1},
    ):
        connection = ConnectionEntry(
            id=2, name="a", provider_type="anthropic", base_url="", options=options
        )
        with pytest.raises(OptionsError):
            AnthropicAdapter(connection)


def test_default_base_url_is_anthropic():
    connection = ConnectionEntry(id=3, name="a", provider_type="anthropic", base_url="")

    adapter = AnthropicAdapter(connection)

    assert adapter.messages_url == "https://api.anthropic.com/v1/messages"
