import json
import random

import httpx
import openai
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import ProviderProtocolError, ProviderStatusError
from nexus.engine.ingress.openai import OpenAIIngress
from nexus.engine.providers.anthropic import AnthropicAdapter
from nexus.engine.providers.anthropic_request import RESPONSE_FORMAT_TOOL
from nexus.engine.snapshot import ConnectionEntry

CONNECTION = ConnectionEntry(
    id=1,
    name="anthropic-main",
    provider_type="anthropic",
    base_url="http://fake-anthropic.test",
    credential="provider-key",
)


def event(data: dict) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def message_start(input_tokens=412, cache_read=0, cache_write=0) -> str:
    usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": 2,
    }
    message = {
        "id": "msg_01FAKEPARALLEL",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return event({"type": "message_start", "message": message})


def block_start(index: int, block: dict) -> str:
    return event(
        {"type": "content_block_start", "index": index, "content_block": block}
    )


def block_delta(index: int, delta: dict) -> str:
    return event({"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> str:
    return event({"type": "content_block_stop", "index": index})


def text_block(index: int, text: str) -> str:
    return (
        block_start(index, {"type": "text", "text": ""})
        + block_delta(index, {"type": "text_delta", "text": text})
        + block_stop(index)
    )


def tool_block(index: int, tool_id: str, name: str, fragments: list[str]) -> str:
    start = block_start(
        index, {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    )
    deltas = "".join(
        block_delta(index, {"type": "input_json_delta", "partial_json": fragment})
        for fragment in fragments
    )
    return start + deltas + block_stop(index)


def message_end(stop_reason: str, output_tokens: int, stop_sequence=None) -> str:
    delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    return event(
        {
            "type": "message_delta",
            "delta": delta,
            "usage": {"output_tokens": output_tokens},
        }
    ) + event({"type": "message_stop"})


# A text block followed by two tool_use blocks whose first fragments are empty.
PARALLEL_TOOLS = (
    message_start()
    + block_start(0, {"type": "text", "text": ""})
    + event({"type": "ping"})
    + block_delta(0, {"type": "text_delta", "text": "I'll check both cities."})
    + block_stop(0)
    + tool_block(1, "toolu_01PARA1", "get_weather", ["", '{"city": ', '"Paris"}'])
    + tool_block(2, "toolu_01PARA2", "get_weather", ["", '{"city":"Rome"}'])
    + message_end("tool_use", 96)
)


def chat_request(**body):
    return validate_chat_body(
        {
            "model": "claude-tools",
            "stream": True,
            "messages": [{"role": "user", "content": "What is the weather?"}],
            **body,
        }
    )


def decoder(**body):
    return AnthropicAdapter(CONNECTION).chat_stream_decoder(chat_request(**body))


def decode(sse: str, **body) -> list[dict]:
    stream = decoder(**body)
    return stream.feed(sse.encode()) + stream.finish()


def tool_deltas(chunks: list[dict]) -> list[dict]:
    return [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or []
    ]


def arguments_by_index(chunks: list[dict]) -> dict[int, str]:
    arguments: dict[int, str] = {}
    for call in tool_deltas(chunks):
        fragment = call.get("function", {}).get("arguments", "")
        arguments[call["index"]] = arguments.get(call["index"], "") + fragment
    return arguments


def test_parallel_tools_get_openai_indices():
    chunks = decode(PARALLEL_TOOLS)

    calls = tool_deltas(chunks)
    starts = [call for call in calls if "id" in call]
    assert [call["index"] for call in starts] == [0, 1]
    assert starts[0]["id"] == "toolu_01PARA1"
    assert starts[0]["type"] == "function"
    assert starts[0]["function"]["name"] == "get_weather"
    assert starts[1]["id"] == "toolu_01PARA2"
    assert {call["index"] for call in calls} == {0, 1}
    assert arguments_by_index(chunks) == {0: '{"city": "Paris"}', 1: '{"city":"Rome"}'}


def test_text_arrives_before_tool_calls():
    chunks = decode(PARALLEL_TOOLS)

    first_text = next(
        i
        for i, c in enumerate(chunks)
        if c["choices"] and c["choices"][0]["delta"].get("content")
    )
    first_tool = next(
        i
        for i, c in enumerate(chunks)
        if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    assert (
        chunks[first_text]["choices"][0]["delta"]["content"]
        == "I'll check both cities."
    )
    assert first_text < first_tool


def test_empty_fragments_make_no_chunks():
    chunks = decode(PARALLEL_TOOLS)

    fragments = [call for call in tool_deltas(chunks) if "id" not in call]
    assert [call["function"]["arguments"] for call in fragments] == [
        '{"city": ',
        '"Paris"}',
        '{"city":"Rome"}',
    ]
    contents = [
        choice["delta"]["content"]
        for chunk in chunks[1:]
        for choice in chunk["choices"]
        if "content" in choice["delta"]
    ]
    assert "" not in contents


def test_finish_chunk_then_usage_chunk():
    stream = decoder()

    chunks = stream.feed(PARALLEL_TOOLS.encode())

    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-2])
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 412
    assert usage["usage"]["completion_tokens"] == 96
    assert usage["usage"]["total_tokens"] == 508
    assert stream.finished is True
    assert stream.usage.input_tokens == 412
    assert stream.usage.output_tokens == 96


def test_chunks_carry_message_id_and_model():
    chunks = decode(PARALLEL_TOOLS)

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {chunk["id"] for chunk in chunks} == {"msg_01FAKEPARALLEL"}
    assert {chunk["model"] for chunk in chunks} == {"claude-sonnet-4-5-20250929"}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}


def test_byte_by_byte_feeding():
    whole = decode(PARALLEL_TOOLS)
    stream = decoder()
    stream.created = whole[0]["created"]

    pieces = []
    for byte in PARALLEL_TOOLS.encode():
        pieces.extend(stream.feed(bytes([byte])))
    pieces.extend(stream.finish())

    assert pieces == whole


@pytest.mark.parametrize("seed", range(5))
def test_random_splits_and_crlf_give_the_same_chunks(seed):
    whole = decode(PARALLEL_TOOLS)
    data = PARALLEL_TOOLS.replace("\n", "\r\n").encode()
    cuts = sorted(random.Random(seed).sample(range(1, len(data)), 40))
    stream = decoder()
    stream.created = whole[0]["created"]

    pieces = []
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        pieces.extend(stream.feed(data[start:end]))
    pieces.extend(stream.finish())

    assert pieces == whole


def test_three_tool_calls_without_text():
    sse = (
        message_start()
        + tool_block(0, "toolu_a", "f", ["", '{"n":1}'])
        + tool_block(1, "toolu_b", "f", ['{"n":', "2}"])
        + tool_block(2, "toolu_c", "g", [""])
        + message_end("tool_use", 30)
    )

    chunks = decode(sse)

    starts = [call for call in tool_deltas(chunks) if "id" in call]
    assert [(call["index"], call["id"]) for call in starts] == [
        (0, "toolu_a"),
        (1, "toolu_b"),
        (2, "toolu_c"),
    ]
    assert arguments_by_index(chunks) == {0: '{"n":1}', 1: '{"n":2}', 2: ""}


def test_tool_index_after_thinking_and_text():
    sse = (
        message_start()
        + block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
        + block_delta(0, {"type": "thinking_delta", "thinking": "Let me "})
        + block_delta(0, {"type": "thinking_delta", "thinking": "think."})
        + block_delta(0, {"type": "signature_delta", "signature": "sig-123"})
        + block_stop(0)
        + text_block(1, "Checking.")
        + tool_block(2, "toolu_x", "f", ['{"a":1}'])
        + message_end("tool_use", 50)
    )

    chunks = decode(sse)

    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    reasoning = "".join(delta.get("reasoning_content", "") for delta in deltas)
    blocks = [block for delta in deltas for block in delta.get("thinking_blocks", [])]
    assert reasoning == "Let me think."
    assert blocks == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-123"}
    ]
    assert tool_deltas(chunks)[0]["index"] == 0


def test_redacted_thinking_is_forwarded_as_a_block():
    sse = (
        message_start()
        + block_start(0, {"type": "redacted_thinking", "data": "opaque"})
        + block_stop(0)
        + text_block(1, "Hi")
        + message_end("end_turn", 5)
    )

    chunks = decode(sse)

    blocks = [
        b
        for c in chunks
        if c["choices"]
        for b in c["choices"][0]["delta"].get("thinking_blocks", [])
    ]
    assert blocks == [{"type": "redacted_thinking", "data": "opaque"}]


def test_overloaded_error_mid_stream_raises_529():
    stream = decoder()
    before = stream.feed((message_start() + text_block(0, "partial")).encode())
    error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }

    with pytest.raises(ProviderStatusError) as raised:
        stream.feed(event(error).encode())

    assert any(
        c["choices"] and c["choices"][0]["delta"].get("content") == "partial"
        for c in before
    )
    assert raised.value.status == 529
    assert raised.value.type == "overloaded_error"
    assert raised.value.retryable is True
    assert stream.finished is False


def test_unknown_error_type_mid_stream_is_500():
    error = {"type": "error", "error": {"type": "something_new", "message": "boom"}}

    with pytest.raises(ProviderStatusError) as raised:
        decode(message_start() + event(error))

    assert raised.value.status == 500


def test_non_json_event_protocol_error():
    with pytest.raises(ProviderProtocolError):
        decode("event: message_start\ndata: {not json\n\n")


def test_stream_cut_before_message_stop_is_not_finished():
    stream = decoder()

    chunks = (
        stream.feed((message_start() + text_block(0, "half")).encode())
        + stream.finish()
    )

    assert stream.finished is False
    assert all(
        chunk["choices"] and chunk["choices"][0]["finish_reason"] is None
        for chunk in chunks
    )


def test_unknown_events_and_blocks_are_ignored():
    sse = (
        message_start()
        + event({"type": "future_event", "value": 1})
        + block_start(
            0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}
        )
        + block_delta(0, {"type": "input_json_delta", "partial_json": '{"q":"x"}'})
        + block_stop(0)
        + text_block(1, "Done")
        + message_end("end_turn", 4)
    )

    chunks = decode(sse)

    assert tool_deltas(chunks) == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("max_tokens", "length"), ("end_turn", "stop"), ("refusal", "content_filter")],
)
def test_stream_finish_reason_mapping(stop_reason, finish_reason):
    chunks = decode(message_start() + text_block(0, "x") + message_end(stop_reason, 16))

    assert chunks[-2]["choices"][0]["finish_reason"] == finish_reason


def test_stream_stop_sequence_is_kept():
    chunks = decode(
        message_start() + text_block(0, "x") + message_end("stop_sequence", 3, "END")
    )

    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"][0]["stop_reason"] == "END"


def test_stream_cache_usage():
    sse = (
        message_start(input_tokens=3, cache_write=12304)
        + text_block(0, "x")
        + message_end("end_turn", 550)
    )
    stream = decoder()

    chunks = stream.feed(sse.encode())

    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] == 12307
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 12304
    assert stream.usage.cache_write_tokens == 12304


def test_response_format_tool_streams_as_content():
    sse = (
        message_start()
        + tool_block(
            0,
            "toolu_json",
            RESPONSE_FORMAT_TOOL,
            ["", '{"city":', '"Paris","temp_c":18}'],
        )
        + message_end("tool_use", 40)
    )

    chunks = decode(sse, response_format={"type": "json_object"})

    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
    )
    assert json.loads(text) == {"city": "Paris", "temp_c": 18}
    assert tool_deltas(chunks) == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_tool_input_sent_whole_in_the_start_event():
    sse = (
        message_start()
        + block_start(
            0,
            {
                "type": "tool_use",
                "id": "toolu_w",
                "name": "add",
                "input": {"a": 17, "b": 25},
            },
        )
        + block_stop(0)
        + message_end("tool_use", 18)
    )

    chunks = decode(sse)

    assert json.loads(arguments_by_index(chunks)[0]) == {"a": 17, "b": 25}


def test_openai_sdk_accumulates_decoded_tool_calls():
    request = chat_request(stream_options={"include_usage": True})
    stream = AnthropicAdapter(CONNECTION).chat_stream_decoder(request)
    encoder = OpenAIIngress().chat_stream_encoder(request)
    body = b"".join(
        encoder.encode(chunk) for chunk in stream.feed(PARALLEL_TOOLS.encode())
    )
    body += encoder.finish()
    transport = httpx.MockTransport(
        lambda _: httpx.Response(
            200, content=body, headers={"content-type": "text/event-stream"}
        )
    )
    client = openai.OpenAI(
        api_key="virtual-key",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=transport),
    )

    with client.chat.completions.stream(
        model="claude-tools", messages=[{"role": "user", "content": "weather?"}]
    ) as sdk_stream:
        completion = sdk_stream.get_final_completion()

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check both cities."
    assert [call.id for call in choice.message.tool_calls] == [
        "toolu_01PARA1",
        "toolu_01PARA2",
    ]
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {
        "city": "Paris"
    }
    assert json.loads(choice.message.tool_calls[1].function.arguments) == {
        "city": "Rome"
    }
    assert completion.usage.prompt_tokens == 412
    assert completion.usage.completion_tokens == 96
