"""Unit tests of the Gemini codec: request translation, responses, streams and errors."""

import json

import orjson
import pytest

from nexus.engine.canonical import validate_chat_body, validate_embeddings_body
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.providers.base import OptionsError
from nexus.engine.providers.gemini import GeminiAdapter
from nexus.engine.providers.gemini_format import (
    google_error,
    signature_from_tool_call_id,
    tool_call_id,
    usage_from_gemini,
)
from nexus.engine.providers.gemini_schema import gemini_schema
from nexus.engine.providers.gemini_stream import GeminiStreamDecoder
from nexus.engine.snapshot import ConnectionEntry


def adapter(**options):
    connection = ConnectionEntry(
        id=1,
        name="gemini-test",
        provider_type="gemini",
        base_url="http://fake",
        credential="k",
        options=options,
    )
    return GeminiAdapter(connection)


def chat(**body):
    body.setdefault("model", "public")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return validate_chat_body(body)


def sent_body(request, **options):
    return orjson.loads(
        adapter(**options).build_chat_request(request, "gemini-2.5-flash").body
    )


def sse(*events):
    return b"".join(b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in events)


def text_event(text, finish=None, **extra):
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 3},
        **extra,
    }


def test_tool_call_id_carries_any_signature():
    for signature in ["c2lnLXN5bnRoZXRpYy0wMQ==", "not base64 at all", "ünïcode/+="]:
        call_id = tool_call_id(signature)

        assert call_id.startswith("call_")
        assert set(call_id) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
        )
        assert signature_from_tool_call_id(call_id) == signature


def test_tool_call_id_without_signature_has_none():
    assert signature_from_tool_call_id(tool_call_id()) is None
    assert signature_from_tool_call_id("toolu_01abc") is None


def test_usage_counts_thoughts_and_cache():
    usage = usage_from_gemini(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 30,
            "toolUsePromptTokenCount": 5,
        }
    )

    assert usage.input_tokens == 105
    assert usage.cached_tokens == 60
    assert usage.output_tokens == 40
    assert usage.reasoning_tokens == 30


def test_reasoning_effort_none_disables_thinking():
    assert sent_body(chat(reasoning_effort="none"))["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 0}
    }


def test_unknown_reasoning_effort_is_rejected():
    with pytest.raises(InvalidRequestError) as caught:
        sent_body(chat(reasoning_effort="extreme"))

    assert caught.value.param == "reasoning_effort"


def test_tool_result_without_matching_call_is_rejected():
    request = chat(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "call_x", "content": "1"},
        ]
    )

    with pytest.raises(InvalidRequestError) as caught:
        sent_body(request)

    assert caught.value.param == "messages[1].tool_call_id"


def test_failed_tool_result_is_sent_as_error():
    request = chat(
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": "timed out",
                "is_error": True,
            },
        ]
    )

    parts = sent_body(request)["contents"][2]["parts"]

    assert parts == [
        {"functionResponse": {"name": "f", "response": {"error": "timed out"}}}
    ]


def test_audio_and_file_parts_become_inline_data():
    request = chat(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_audio",
                        "input_audio": {"data": "UklGRg==", "format": "wav"},
                    },
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0="},
                    },
                ],
            }
        ]
    )

    parts = sent_body(request)["contents"][0]["parts"]

    assert parts == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


def test_image_url_without_extension_is_declared_jpeg():
    request = chat(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "gs://bucket/photo"}}
                ],
            }
        ]
    )

    assert (
        sent_body(request)["contents"][0]["parts"][0]["fileData"]["mimeType"]
        == "image/jpeg"
    )


def test_full_json_schema_option_sends_schemas_unchanged():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": False,
    }
    request = chat(
        tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": schema},
        },
    )

    body = sent_body(request, full_json_schema=True)

    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == schema
    assert body["generationConfig"]["responseJsonSchema"] == schema


def test_safety_settings_option_is_sent():
    settings = [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
    ]

    assert sent_body(chat(), safety_settings=settings)["safetySettings"] == settings


def test_unknown_option_is_rejected():
    with pytest.raises(OptionsError):
        adapter(project_id="p")


def test_malformed_option_is_rejected():
    with pytest.raises(OptionsError):
        adapter(safety_settings="BLOCK_NONE")


def test_model_with_a_resource_path_keeps_it():
    request = adapter().build_chat_request(chat(), "tunedModels/my-model")

    assert request.url == "http://fake/v1beta/tunedModels/my-model:generateContent"


def test_several_candidates_become_choices():
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": "one"}]},
                "finishReason": "STOP",
                "index": 0,
            },
            {
                "content": {"parts": [{"text": "two"}]},
                "finishReason": "MAX_TOKENS",
                "index": 1,
            },
        ],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2},
    }

    result = adapter().parse_chat_response(orjson.dumps(body), chat(n=2))

    choices = result.body["choices"]
    assert [choice["message"]["content"] for choice in choices] == ["one", "two"]
    assert [choice["finish_reason"] for choice in choices] == ["stop", "length"]
    assert sent_body(chat(n=2))["generationConfig"]["candidateCount"] == 2


def test_response_without_candidates_fails():
    with pytest.raises(ProviderProtocolError):
        adapter().parse_chat_response(b'{"usageMetadata": {}}', chat())


def test_schema_rewrite_merges_all_of_and_cuts_recursion():
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/node"}},
            }
        },
        "allOf": [
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
            },
            {"properties": {"tree": {"$ref": "#/$defs/node"}}, "required": ["tree"]},
        ],
    }

    converted = gemini_schema(schema)

    assert converted["type"] == "object"
    assert converted["required"] == ["a", "tree"]
    depth = 0
    node = converted["properties"]["tree"]
    while "properties" in node:
        node = node["properties"]["child"]
        depth += 1
    assert 1 < depth < 40


def test_schema_rewrite_turns_null_variants_into_nullable():
    converted = gemini_schema(
        {
            "anyOf": [{"type": "string", "format": "email"}, {"type": "null"}],
            "enum": [1, 2],
        }
    )

    assert converted == {"type": "string", "nullable": True}


def test_stream_decodes_events_split_at_every_byte():
    raw = sse(text_event("Hello "), text_event("world", "STOP", responseId="r1"))
    decoder = GeminiStreamDecoder("gemini-test")

    chunks = [
        chunk
        for byte in range(len(raw))
        for chunk in decoder.feed(raw[byte : byte + 1])
    ]
    chunks += decoder.finish()

    text = "".join(
        chunk["choices"][0]["delta"].get("content", "")
        for chunk in chunks
        if chunk["choices"]
    )
    assert text == "Hello world"
    assert decoder.finished
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 3
    assert chunks[-1]["id"] == "chatcmpl-r1"


def test_stream_cut_before_finish_reason_is_unfinished():
    decoder = GeminiStreamDecoder("gemini-test")

    decoder.feed(sse(text_event("Hello")))
    chunks = decoder.finish()

    assert not decoder.finished
    assert chunks == []


def test_stream_error_event_keeps_its_status():
    decoder = GeminiStreamDecoder("gemini-test")
    error = {
        "error": {
            "code": 503,
            "message": "The model is overloaded.",
            "status": "UNAVAILABLE",
        }
    }

    with pytest.raises(ProviderStatusError) as caught:
        decoder.feed(sse(text_event("Hi"), error))

    assert caught.value.status == 503
    assert caught.value.type == "overloaded_error"
    assert caught.value.retryable


def test_stream_event_not_json_fails():
    with pytest.raises(ProviderProtocolError):
        GeminiStreamDecoder("gemini-test").feed(b"data: {oops\r\n\r\n")


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "expected_type"),
    [
        (
            400,
            {"error": {"code": 400, "message": "Bad.", "status": "INVALID_ARGUMENT"}},
            400,
            "invalid_request_error",
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid.",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"reason": "API_KEY_INVALID"}],
                }
            },
            401,
            "authentication_error",
        ),
        (
            403,
            {"error": {"code": 403, "message": "No.", "status": "PERMISSION_DENIED"}},
            403,
            "permission_error",
        ),
        (
            429,
            [
                {
                    "error": {
                        "code": 429,
                        "message": "Slow down.",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                }
            ],
            429,
            "rate_limit_error",
        ),
        (502, "<html>Bad gateway</html>", 502, "api_error"),
    ],
)
def test_google_errors_map_to_status_and_type(
    status, body, expected_status, expected_type
):
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()

    error = google_error(status, raw, "gemini-test")

    assert error.status == expected_status
    assert error.type == expected_type


def test_token_id_embeddings_input_is_rejected():
    request = validate_embeddings_body({"model": "e", "input": [[1, 2, 3]]})

    with pytest.raises(InvalidRequestError):
        adapter().build_embeddings_request(request, "gemini-embedding-001")


def test_embeddings_without_usage_are_estimated():
    request = validate_embeddings_body({"model": "e", "input": ["twelve chars"]})
    body = orjson.dumps({"embeddings": [{"values": [0.1, 0.2]}]})

    result = adapter().parse_embeddings_response(body, request)

    assert result.vectors == [[0.1, 0.2]]
    assert result.usage.input_tokens == 3
    assert not result.usage.reported


def test_embeddings_count_mismatch_is_a_protocol_error():
    request = validate_embeddings_body({"model": "e", "input": ["a", "b"]})

    with pytest.raises(ProviderProtocolError):
        adapter().parse_embeddings_response(
            b'{"embeddings": [{"values": [1.0]}]}', request
        )
