"""The glm provider type: rewrites, error codes, finish reasons, and the gateway end to end."""

import base64
import json
import struct
from types import SimpleNamespace

import openai
import orjson
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import ProviderStatusError
from nexus.engine.providers.glm import GLMAdapter
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


def adapter() -> GLMAdapter:
    return GLMAdapter(
        ConnectionEntry(1, "glm-test", "glm", "http://127.0.0.1:9/api/paas/v4", "k")
    )


def chat(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return validate_chat_body(body)


def sent(request):
    upstream = adapter().build_chat_request(request, "glm-4.5")
    assert upstream.url == "http://127.0.0.1:9/api/paas/v4/chat/completions"
    return orjson.loads(upstream.body)


@pytest.mark.parametrize(
    ("effort", "thinking"), [("high", "enabled"), ("none", "disabled")]
)
def test_reasoning_effort_becomes_thinking(effort, thinking):
    body = sent(chat(reasoning_effort=effort))

    assert body["thinking"] == {"type": thinking}
    assert "reasoning_effort" not in body


def test_required_tool_choice_is_sent_as_auto():
    body = sent(chat(tools=[LOOKUP], tool_choice="required", temperature=1.7))

    assert body["tool_choice"] == "auto"
    assert body["temperature"] == 1.0


def test_json_schema_becomes_json_object_and_instruction():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}

    body = sent(
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": schema},
            }
        )
    )

    assert body["response_format"] == {"type": "json_object"}
    assert json.dumps(schema, separators=(",", ":")) in body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("sensitive", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_finish_reasons_map(finish_reason, expected):
    body = orjson.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {"role": "assistant", "content": "x"},
                }
            ]
        }
    )

    result = adapter().parse_chat_response(body, chat())

    assert result.body["choices"][0]["finish_reason"] == expected


def test_network_error_finish_fails_the_stream():
    decoder = adapter().chat_stream_decoder(chat(stream=True))
    chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": "network_error"}]}

    with pytest.raises(ProviderStatusError) as raised:
        decoder.feed(sse_event(chunk))

    assert raised.value.status == 502


@pytest.mark.parametrize(
    ("http_status", "code", "status", "error_type"),
    [
        (401, "1002", 401, "authentication_error"),
        (429, "1302", 429, "rate_limit_error"),
        (429, "1113", 429, "insufficient_quota"),
        (400, "1261", 400, "invalid_request_error"),
        (400, "1211", 404, "not_found_error"),
        (500, "1234", 502, "api_error"),
        (503, "9999", 503, "api_error"),
    ],
)
def test_business_codes_decide_the_status(http_status, code, status, error_type):
    error = adapter().parse_error(
        http_status, orjson.dumps({"error": {"code": code, "message": "m"}})
    )

    assert (error.status, error.type) == (status, error_type)
    assert code in error.message


@pytest.fixture
def glm(fake_provider, gateway, db_rows):
    connection = make_connection("glm", fake_provider.url + "/api/paas/v4", "glm-key")
    setup = SimpleNamespace(
        chat=make_model(connection, "glm-4.5").name,
        embed=make_model(connection, "embedding-3", kind="embeddings").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("glm", "glm-key")
    gateway.refresh()
    return setup


@pytest.fixture
def client(glm):
    return openai.OpenAI(
        base_url=glm.gateway.openai_base, api_key=glm.key, max_retries=0
    )


def test_streamed_reasoning_and_usage(client, glm):
    chunks = list(
        client.chat.completions.create(
            model=glm.chat,
            messages=[{"role": "user", "content": "one two"}],
            reasoning_effort="high",
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert "".join(d.content or "" for d in deltas) == "Echo: one two"
    assert deltas[0].reasoning_content == "Thinking about: one two"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0


def test_tool_choice_required_reaches_glm_as_auto(client, glm, fake_provider):
    completion = client.chat.completions.create(
        model=glm.chat,
        messages=[{"role": "user", "content": "call lookup"}],
        tools=[LOOKUP],
        tool_choice="required",
    )

    assert completion.choices[0].message.tool_calls[0].function.name == "lookup"
    assert fake_provider.requests[-1].json["tool_choice"] == "auto"


def test_sensitive_content_is_a_content_filter_finish(client, glm, fake_provider):
    fake_provider.enqueue(
        "/chat/completions", {"reply": {"finish_reason": "sensitive"}}
    )

    completion = client.chat.completions.create(
        model=glm.chat, messages=[{"role": "user", "content": "x"}]
    )

    assert completion.choices[0].finish_reason == "content_filter"


def test_concurrency_error_is_a_429(client, glm, fake_provider):
    fake_provider.enqueue(
        "/chat/completions",
        {"status": 429, "error": {"type": "1302", "message": "并发数过高"}},
    )

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model=glm.chat, messages=[{"role": "user", "content": "x"}]
        )


def test_wrong_key_is_a_401(client, glm, fake_provider):
    fake_provider.set_key("glm", "other")

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=glm.chat, messages=[{"role": "user", "content": "x"}]
        )


def test_embeddings_drop_encoding_format_and_return_base64(client, glm, fake_provider):
    raw = client.embeddings.with_raw_response.create(
        model=glm.embed, input=["hello world"], encoding_format="base64"
    )

    body = json.loads(raw.text)
    vector = struct.unpack("<8f", base64.b64decode(body["data"][0]["embedding"]))
    assert len(vector) == 8
    assert "encoding_format" not in fake_provider.requests[-1].json
    assert body["usage"]["prompt_tokens"] == 2
