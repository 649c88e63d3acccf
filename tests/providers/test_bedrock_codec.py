"""The bedrock codec without a network: requests, responses, streams and errors."""

import json
import re

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nexus.engine.canonical import validate_chat_body, validate_embeddings_body
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.providers.base import OptionsError
from nexus.engine.providers.bedrock import BedrockAdapter
from nexus.engine.snapshot import ConnectionEntry
from nexus.fakeprovider.vendors.eventstream import event_frame, exception_frame
from tests.cases.loader import load_case

CREDENTIAL = json.dumps(
    {
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "secret",
        "session_token": "tok",
    }
)
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def adapter(**fields) -> BedrockAdapter:
    values = {
        "id": 1,
        "name": "bedrock-test",
        "provider_type": "bedrock",
        "base_url": "http://127.0.0.1:9",
        "credential": CREDENTIAL,
        "region": "us-east-1",
    }
    values.update(fields)
    return BedrockAdapter(ConnectionEntry(**values))


def chat(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return validate_chat_body(body)


def sent_body(request, model=MODEL):
    return orjson.loads(adapter().build_chat_request(request, model).body)


def test_case_21_tool_results_become_one_user_turn():
    case = load_case(21)
    request = validate_chat_body(case["client_request"]["body"])
    expected = case["expect"]["upstream_request"]

    upstream = adapter().build_chat_request(request, MODEL)
    body = orjson.loads(upstream.body)

    assert upstream.url == f"http://127.0.0.1:9/model/{MODEL}/converse"
    assert body["system"] == expected["system"]
    assert body["messages"] == expected["messages"]
    assert body["inferenceConfig"]["maxTokens"] == 200
    spec = body["toolConfig"]["tools"][0]["toolSpec"]
    assert (
        spec["inputSchema"]["json"]
        == (case["client_request"]["body"]["tools"][0]["function"]["parameters"])
    )


def test_conflicting_results_for_one_id_are_rejected():
    request = chat(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "one"},
            {"role": "tool", "tool_call_id": "t1", "content": "two"},
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
    )

    with pytest.raises(InvalidRequestError) as raised:
        adapter().build_chat_request(request, MODEL)

    assert "t1" in raised.value.message


def test_results_split_by_user_text_join_one_turn():
    request = chat(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "a",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    },
                    {
                        "id": "b",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "user", "content": "and then"},
            {"role": "tool", "tool_call_id": "b", "content": ""},
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
    )

    turns = sent_body(request)["messages"]

    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0]["toolUse"]["input"] == {}
    assert [list(block) for block in turns[2]["content"]] == [
        ["toolResult"],
        ["toolResult"],
        ["text"],
    ]
    assert turns[2]["content"][1]["toolResult"]["content"] == [{"json": {}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "f"}}, {"tool": {"name": "f"}}),
    ],
)
def test_tool_choice_maps_to_converse(choice, expected):
    request = chat(
        tools=[{"type": "function", "function": {"name": "f"}}], tool_choice=choice
    )

    config = sent_body(request)["toolConfig"]

    assert config.get("toolChoice") == expected


def test_tool_choice_none_without_tool_history_drops_tools():
    request = chat(
        tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="none"
    )

    assert "toolConfig" not in sent_body(request)


def test_image_data_url_becomes_bytes():
    image = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }
    request = chat(
        messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, image]}]
    )

    blocks = sent_body(request)["messages"][0]["content"]

    assert blocks[1] == {
        "image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}
    }


def test_image_http_url_is_rejected_with_400():
    image = {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}}
    request = chat(messages=[{"role": "user", "content": [image]}])

    with pytest.raises(InvalidRequestError) as raised:
        adapter().build_chat_request(request, MODEL)

    assert raised.value.status == 400
    assert "data URL" in raised.value.message


def test_response_format_forces_the_json_tool():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = chat(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": schema},
        }
    )

    config = sent_body(request)["toolConfig"]

    assert config["tools"][0]["toolSpec"]["inputSchema"]["json"] == schema
    assert config["toolChoice"] == {"tool": {"name": "json_response"}}


def test_reasoning_effort_sends_a_claude_thinking_budget():
    body = sent_body(chat(reasoning_effort="low"))

    thinking = body["additionalModelRequestFields"]["thinking"]
    assert thinking == {"type": "enabled", "budget_tokens": 4096}
    assert body["inferenceConfig"]["maxTokens"] > 4096


def test_thinking_blocks_go_back_with_their_signature():
    request = chat(
        messages=[
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "a",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "t", "signature": "s"}
                ],
            },
            {"role": "user", "content": "q2"},
        ]
    )

    blocks = sent_body(request)["messages"][1]["content"]

    assert blocks[0] == {
        "reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}
    }


def answer(content, stop_reason="end_turn", usage=None):
    body = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": usage or {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
    }
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    list(
        load_case(12)["expect"][
            "mapping_table_reuse_fixture_by_changing_the_stop_value"
        ]["bedrock converse stopReason"].items()
    ),
)
def test_case_12_stop_reasons_map(stop_reason, expected):
    content = [{"text": "x"}]
    if stop_reason == "tool_use":
        content.append({"toolUse": {"toolUseId": "t", "name": "f", "input": {}}})

    result = adapter().parse_chat_response(answer(content, stop_reason), chat())

    assert result.body["choices"][0]["finish_reason"] == expected


def test_unknown_stop_reason_at_limit_is_length():
    usage = {"inputTokens": 1, "outputTokens": 16, "totalTokens": 17}

    result = adapter().parse_chat_response(
        answer([{"text": "x"}], "brand_new_reason", usage), chat(max_tokens=16)
    )

    assert result.body["choices"][0]["finish_reason"] == "length"


def test_usage_counts_cache_reads_and_writes_as_input():
    usage = {
        "inputTokens": 10,
        "outputTokens": 4,
        "totalTokens": 44,
        "cacheReadInputTokens": 20,
        "cacheWriteInputTokens": 10,
    }

    result = adapter().parse_chat_response(answer([{"text": "x"}], usage=usage), chat())

    assert result.usage.input_tokens == 40
    assert result.usage.cached_tokens == 20
    assert result.usage.cache_write_tokens == 10
    details = result.body["usage"]["prompt_tokens_details"]
    assert details == {"cached_tokens": 20, "cache_write_tokens": 10}


def test_reasoning_content_keeps_its_signature():
    content = [
        {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
        {"text": "done"},
    ]

    message = (
        adapter()
        .parse_chat_response(answer(content), chat())
        .body["choices"][0]["message"]
    )

    assert message["content"] == "done"
    assert message["reasoning_content"] == "think"
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "think", "signature": "sig"}
    ]


def stream_bytes(*events):
    return b"".join(event_frame(kind, data) for kind, data in events)


def test_stream_decodes_text_tools_reasoning_and_usage():
    decoder = adapter().chat_stream_decoder(chat(stream=True))
    data = stream_bytes(
        ("messageStart", {"role": "assistant"}),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hm"}}},
        ),
        (
            "contentBlockDelta",
            {
                "contentBlockIndex": 0,
                "delta": {"reasoningContent": {"signature": "sg"}},
            },
        ),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
        (
            "contentBlockStart",
            {
                "contentBlockIndex": 2,
                "start": {"toolUse": {"toolUseId": "a", "name": "f"}},
            },
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"x":'}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "1}"}}},
        ),
        (
            "contentBlockStart",
            {
                "contentBlockIndex": 3,
                "start": {"toolUse": {"toolUseId": "b", "name": "g"}},
            },
        ),
        ("messageStop", {"stopReason": "tool_use"}),
        (
            "metadata",
            {"usage": {"inputTokens": 5, "outputTokens": 7, "cacheReadInputTokens": 2}},
        ),
    )

    # Feed byte by byte so frames split across reads are reassembled.
    chunks = [chunk for byte in data for chunk in decoder.feed(bytes([byte]))]

    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    calls = [call for delta in deltas for call in delta.get("tool_calls", [])]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "hm"}
    assert deltas[2]["thinking_blocks"][0]["signature"] == "sg"
    assert [call["index"] for call in calls] == [0, 0, 0, 1]
    assert calls[0]["id"] == "a"
    assert calls[3]["id"] == "b"
    assert (
        "".join(call["function"].get("arguments", "") for call in calls[:3])
        == '{"x":1}'
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 7
    assert decoder.finished


def test_stream_exception_keeps_its_status():
    decoder = adapter().chat_stream_decoder(chat(stream=True))

    with pytest.raises(ProviderStatusError) as raised:
        decoder.feed(exception_frame("throttlingException", "Too many requests"))

    assert raised.value.status == 429
    assert "Too many requests" in raised.value.message


def test_bad_frame_checksum_is_protocol_error():
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF
    decoder = adapter().chat_stream_decoder(chat(stream=True))

    with pytest.raises(ProviderProtocolError):
        decoder.feed(bytes(frame))


@pytest.mark.parametrize(
    ("status", "error_type", "expected_status", "expected_type"),
    [
        (400, "ValidationException", 400, "invalid_request_error"),
        (403, "UnrecognizedClientException", 401, "authentication_error"),
        (403, "AccessDeniedException", 403, "permission_error"),
        (429, "ThrottlingException", 429, "rate_limit_error"),
        (503, "ServiceUnavailableException", 503, "api_error"),
        (500, "InternalServerException", 500, "api_error"),
    ],
)
def test_errors_map_by_type(status, error_type, expected_status, expected_type):
    body = orjson.dumps({"message": "m", "__type": error_type})

    error = adapter().parse_error(status, body)

    assert error.status == expected_status
    assert error.type == expected_type


async def test_authorize_adds_a_verifiable_sigv4_signature():
    bedrock = adapter()
    upstream = bedrock.build_chat_request(chat(), MODEL)

    await bedrock.authorize(upstream)

    headers = upstream.headers
    assert re.match(
        r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/bedrock/aws4_request, "
        r"SignedHeaders=[a-z;-]*host[a-z;-]*, Signature=[0-9a-f]{64}$",
        headers["Authorization"],
    )
    assert headers["X-Amz-Security-Token"] == "tok"
    resigned = AWSRequest(
        "POST",
        upstream.url,
        data=upstream.body,
        headers={
            name: value for name, value in headers.items() if name != "Authorization"
        },
    )
    resigned.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(
        Credentials("AKIDEXAMPLE", "secret", "tok"), "bedrock", "us-east-1"
    )
    signature = signer.signature(
        signer.string_to_sign(resigned, signer.canonical_request(resigned)), resigned
    )
    assert headers["Authorization"].endswith(f"Signature={signature}")


def test_model_id_slashes_are_escaped():
    arn = "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude"

    url = adapter().model_url(arn, "converse")

    assert url.endswith(
        "/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.anthropic.claude/converse"
    )


def test_connection_without_region_is_rejected():
    with pytest.raises(OptionsError):
        adapter(region="")


def test_malformed_credential_is_not_echoed():
    with pytest.raises(OptionsError) as raised:
        adapter(credential="AKIDEXAMPLE:secret-value")

    assert "secret-value" not in str(raised.value)


def test_titan_embeddings_are_one_call_per_input():
    request = validate_embeddings_body(
        {"model": "e", "input": ["a", "b", "c"], "dimensions": 256}
    )

    batch = adapter().build_embeddings_request(request, "amazon.titan-embed-text-v2:0")

    assert [orjson.loads(part.body) for part in batch.parts] == [
        {"inputText": "a", "dimensions": 256},
        {"inputText": "b", "dimensions": 256},
        {"inputText": "c", "dimensions": 256},
    ]


def test_other_embedding_models_are_rejected():
    request = validate_embeddings_body({"model": "e", "input": "a"})

    with pytest.raises(InvalidRequestError):
        adapter().build_embeddings_request(request, "meta.llama3-8b-instruct-v1:0")
