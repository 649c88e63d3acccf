"""The minimax provider type: base_resp errors, rewrites, streams, and the gateway end to end."""

import json
from types import SimpleNamespace

import openai
import orjson
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import ProviderStatusError
from nexus.engine.providers.minimax import MiniMaxAdapter
from nexus.engine.snapshot import ConnectionEntry
from nexus.fakeprovider.vendors.base import sse_event
from tests.support.factories import make_connection, make_model, make_tenant

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    },
}
OTHER = {
    "type": "function",
    "function": {"name": "other", "parameters": {"type": "object"}},
}


def adapter() -> MiniMaxAdapter:
    return MiniMaxAdapter(
        ConnectionEntry(1, "mm-test", "minimax", "http://127.0.0.1:9/v1", "k")
    )


def chat(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return validate_chat_body(body)


def test_request_goes_to_chatcompletion_v2_with_rewrites():
    upstream = adapter().build_chat_request(
        chat(
            tools=[LOOKUP, OTHER],
            tool_choice={"type": "function", "function": {"name": "other"}},
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        ),
        "MiniMax-M1",
    )

    body = orjson.loads(upstream.body)
    assert upstream.url == "http://127.0.0.1:9/v1/text/chatcompletion_v2"
    assert body["tool_choice"] == "auto"
    assert [tool["function"]["name"] for tool in body["tools"]] == ["other"]
    assert body["temperature"] == 0.01
    assert "stream_options" not in body


def test_json_object_becomes_a_system_instruction():
    body = orjson.loads(
        adapter()
        .build_chat_request(chat(response_format={"type": "json_object"}), "m")
        .body
    )

    assert "response_format" not in body
    assert body["messages"][0]["role"] == "system"
    assert "JSON" in body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("code", "status", "error_type"),
    [
        (1002, 429, "rate_limit_error"),
        (1004, 401, "authentication_error"),
        (2013, 400, "invalid_request_error"),
        (1008, 402, "insufficient_quota"),
        (1000, 500, "api_error"),
        (9999, 500, "api_error"),
    ],
)
def test_http_200_base_resp_error_is_mapped(code, status, error_type):
    body = orjson.dumps({"base_resp": {"status_code": code, "status_msg": "m"}})

    with pytest.raises(ProviderStatusError) as raised:
        adapter().parse_chat_response(body, chat())

    assert raised.value.status == status
    assert raised.value.type == error_type
    assert raised.value.code == f"minimax_{code}"


def test_output_sensitive_is_a_content_filter_finish():
    body = orjson.dumps(
        {"choices": None, "base_resp": {"status_code": 1027, "status_msg": "x"}}
    )

    result = adapter().parse_chat_response(body, chat())

    assert result.body["choices"][0]["finish_reason"] == "content_filter"


def test_reasoning_details_become_reasoning_content():
    body = orjson.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "a",
                        "reasoning_details": [
                            {"type": "reasoning.text", "text": "why"}
                        ],
                    },
                }
            ],
            "base_resp": {"status_code": 0, "status_msg": "success"},
        }
    )

    message = adapter().parse_chat_response(body, chat()).body["choices"][0]["message"]

    assert message["reasoning_content"] == "why"
    assert "reasoning_details" not in message


def test_stream_base_resp_error_fails_the_stream():
    decoder = adapter().chat_stream_decoder(chat(stream=True))
    chunk = {
        "choices": [],
        "base_resp": {"status_code": 1002, "status_msg": "rate limit"},
    }

    with pytest.raises(ProviderStatusError) as raised:
        decoder.feed(sse_event(chunk))

    assert raised.value.status == 429


@pytest.fixture
def minimax(fake_provider, gateway, db_rows):
    connection = make_connection("minimax", fake_provider.url + "/v1", "mm-key")
    setup = SimpleNamespace(
        chat=make_model(connection, "MiniMax-M1").name,
        text=make_model(connection, "MiniMax-Text-01").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("minimax", "mm-key")
    gateway.refresh()
    return setup


@pytest.fixture
def client(minimax):
    return openai.OpenAI(
        base_url=minimax.gateway.openai_base, api_key=minimax.key, max_retries=0
    )


def test_chat_with_reasoning_through_gateway(client, minimax):
    completion = client.chat.completions.create(
        model=minimax.chat, messages=[{"role": "user", "content": "hello there"}]
    )

    assert completion.choices[0].message.content == "Echo: hello there"
    assert (
        completion.choices[0].message.reasoning_content == "Thinking about: hello there"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens > 0


def test_stream_without_done_finishes_with_separate_usage(client, minimax):
    chunks = list(
        client.chat.completions.create(
            model=minimax.text,
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert text == "Echo: one two"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 2


def test_named_tool_choice_reaches_the_model(client, minimax):
    completion = client.chat.completions.create(
        model=minimax.text,
        messages=[{"role": "user", "content": "call lookup"}],
        tools=[LOOKUP, OTHER],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )

    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"word": "test"}


def test_wrong_key_answered_with_http_200_is_a_401(client, minimax, fake_provider):
    fake_provider.set_key("minimax", "other")

    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(
            model=minimax.chat, messages=[{"role": "user", "content": "x"}]
        )

    assert "1004" in raised.value.message


def test_rate_limit_in_base_resp_is_a_429(client, minimax, fake_provider):
    fake_provider.enqueue(
        "/chatcompletion_v2",
        {"status": 200, "error": {"type": "1002", "message": "rate limit"}},
    )

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model=minimax.chat, messages=[{"role": "user", "content": "x"}]
        )


def test_stream_drops_the_repeated_message_and_splits_usage():
    decoder = adapter().chat_stream_decoder(chat(stream=True))
    last = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "delta": {},
                "message": {"content": "all"},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }

    chunks = decoder.feed(sse_event(last)) + decoder.finish()

    assert "message" not in chunks[0]["choices"][0]
    assert "usage" not in chunks[0]
    assert chunks[1]["choices"] == []
    assert chunks[1]["usage"]["prompt_tokens"] == 3
    assert decoder.finished
    assert decoder.usage.input_tokens == 3
