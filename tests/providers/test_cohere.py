"""The cohere provider type: codec units and the openai SDK through the gateway to fake Cohere."""

import base64
import json
import struct
from types import SimpleNamespace

import openai
import orjson
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import ProviderStatusError
from nexus.engine.providers.cohere import CohereAdapter
from nexus.engine.snapshot import ConnectionEntry
from nexus.fakeprovider.vendors.base import sse_event
from tests.cases.loader import load_case
from tests.support.factories import make_connection, make_model, make_tenant

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
        "strict": True,
    },
}
OTHER = {
    "type": "function",
    "function": {"name": "other", "parameters": {"type": "object"}},
}


def adapter() -> CohereAdapter:
    return CohereAdapter(
        ConnectionEntry(1, "cohere-test", "cohere", "http://127.0.0.1:9", "key")
    )


def chat(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return validate_chat_body(body)


def sent(request):
    return orjson.loads(adapter().build_chat_request(request, "command-a-03-2025").body)


def test_request_keeps_openai_shapes_and_renames_sampling():
    body = sent(
        chat(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "found"},
            ],
            tools=[LOOKUP],
            top_p=0.5,
            stop="END",
            max_tokens=10,
        )
    )

    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "found",
    }
    assert body["messages"][2]["tool_calls"][0]["id"] == "c1"
    assert body["tools"][0]["function"] == {
        "name": "lookup",
        "parameters": LOOKUP["function"]["parameters"],
        "description": "Look a word up.",
    }
    assert body["p"] == 0.5
    assert body["stop_sequences"] == ["END"]
    assert body["max_tokens"] == 10


@pytest.mark.parametrize(
    ("choice", "expected_choice", "expected_tools"),
    [
        ("auto", None, ["lookup", "other"]),
        ("required", "REQUIRED", ["lookup", "other"]),
        ("none", "NONE", ["lookup", "other"]),
        ({"type": "function", "function": {"name": "other"}}, "REQUIRED", ["other"]),
    ],
)
def test_tool_choice_maps_to_cohere(choice, expected_choice, expected_tools):
    body = sent(chat(tools=[LOOKUP, OTHER], tool_choice=choice))

    assert body.get("tool_choice") == expected_choice
    assert [tool["function"]["name"] for tool in body["tools"]] == expected_tools


def test_json_schema_becomes_json_object_with_schema():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}

    body = sent(
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": schema},
            }
        )
    )

    assert body["response_format"] == {"type": "json_object", "json_schema": schema}


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    list(
        load_case(12)["expect"][
            "mapping_table_reuse_fixture_by_changing_the_stop_value"
        ]["cohere v2 finish_reason"].items()
    )
    + [("ERROR_TOXIC", "content_filter"), ("ERROR_LIMIT", "length")],
)
def test_case_12_finish_reasons_map(finish_reason, expected):
    answer = {
        "id": "x",
        "finish_reason": finish_reason,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "t"}]},
        "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}},
    }

    result = adapter().parse_chat_response(orjson.dumps(answer), chat())

    assert result.body["choices"][0]["finish_reason"] == expected


def test_error_finish_reason_is_an_upstream_error():
    answer = {"id": "x", "finish_reason": "ERROR", "message": {"role": "assistant"}}

    with pytest.raises(ProviderStatusError) as raised:
        adapter().parse_chat_response(orjson.dumps(answer), chat())

    assert raised.value.status == 500


def test_usage_prefers_billed_units():
    answer = {
        "id": "x",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": []},
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 3},
            "tokens": {"input_tokens": 70, "output_tokens": 4},
            "cached_tokens": 2,
        },
    }

    usage = adapter().parse_chat_response(orjson.dumps(answer), chat()).usage

    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (5, 3, 2)


def test_stream_error_finish_fails_the_stream():
    decoder = adapter().chat_stream_decoder(chat(stream=True))
    end = {"type": "message-end", "delta": {"finish_reason": "ERROR"}}

    with pytest.raises(ProviderStatusError):
        decoder.feed(sse_event(end, "message-end"))


@pytest.mark.parametrize(("status", "expected"), [(498, 401), (429, 429), (400, 400)])
def test_errors_keep_their_status(status, expected):
    error = adapter().parse_error(status, b'{"id": "e", "message": "nope"}')

    assert error.status == expected
    assert "nope" in error.message


@pytest.fixture
def cohere(fake_provider, gateway, db_rows):
    connection = make_connection("cohere", fake_provider.url, "co-key")
    setup = SimpleNamespace(
        chat=make_model(connection, "command-a-03-2025").name,
        embed=make_model(connection, "embed-english-v3.0", kind="embeddings").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("cohere", "co-key")
    gateway.refresh()
    return setup


@pytest.fixture
def client(cohere):
    return openai.OpenAI(
        base_url=cohere.gateway.openai_base, api_key=cohere.key, max_retries=0
    )


def test_chat_completion_through_gateway(client, cohere, fake_provider):
    completion = client.chat.completions.create(
        model=cohere.chat, messages=[{"role": "user", "content": "hello there"}]
    )

    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 2
    assert fake_provider.requests[-1].headers["authorization"] == "Bearer co-key"


def test_streamed_tool_calls_keep_stable_indices(client, cohere):
    stream = client.chat.completions.create(
        model=cohere.chat,
        messages=[{"role": "user", "content": "call lookup in parallel"}],
        tools=[LOOKUP],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    calls = [
        c
        for chunk in chunks
        if chunk.choices
        for c in chunk.choices[0].delta.tool_calls or []
    ]
    assert [call.index for call in calls if call.id] == [0, 1]
    for index in (0, 1):
        arguments = "".join(
            c.function.arguments or "" for c in calls if c.index == index
        )
        assert json.loads(arguments) == {"word": "test"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.prompt_tokens == 4


def test_max_tokens_streams_length(client, cohere):
    stream = client.chat.completions.create(
        model=cohere.chat,
        messages=[{"role": "user", "content": "a b c d e f"}],
        max_tokens=2,
        stream=True,
    )

    finishes = [chunk.choices[0].finish_reason for chunk in stream if chunk.choices]

    assert finishes[-1] == "length"


def test_reasoning_effort_enables_thinking(client, cohere, fake_provider):
    completion = client.chat.completions.create(
        model=cohere.chat,
        messages=[{"role": "user", "content": "why"}],
        reasoning_effort="high",
    )

    assert fake_provider.requests[-1].json["thinking"] == {"type": "enabled"}
    assert completion.choices[0].message.reasoning_content == "Thinking about: why"


def test_wrong_key_is_a_401(client, cohere, fake_provider):
    fake_provider.set_key("cohere", "other")

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=cohere.chat, messages=[{"role": "user", "content": "x"}]
        )


def test_embeddings_base64_round_trip(client, cohere, fake_provider):
    raw = client.embeddings.with_raw_response.create(
        model=cohere.embed, input=["hello world", "x"], encoding_format="base64"
    )
    floats = client.embeddings.create(
        model=cohere.embed, input=["hello world", "x"], encoding_format="float"
    )

    body = json.loads(raw.text)
    decoded = struct.unpack("<8f", base64.b64decode(body["data"][0]["embedding"]))
    assert list(decoded) == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert body["usage"]["prompt_tokens"] == 3
    sent_body = fake_provider.requests[-1].json
    assert sent_body["input_type"] == "search_document"
    assert sent_body["embedding_types"] == ["float"]


def test_image_parts_pass_as_image_url():
    parts = [
        {"type": "text", "text": "see"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
        },
        {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
    ]

    content = sent(chat(messages=[{"role": "user", "content": parts}]))["messages"][0][
        "content"
    ]

    assert content == parts
