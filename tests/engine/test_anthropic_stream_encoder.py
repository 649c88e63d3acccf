import json

import anthropic
import httpx2
import pytest

from nexus.engine.errors import ProviderStatusError, RateLimitError
from nexus.engine.ingress.anthropic import AnthropicIngress
from nexus.engine.sse import SSEParser


def request(**body):
    payload = {
        "model": "gemini-pro",
        "max_tokens": 200,
        "stream": True,
        "messages": [
            {"role": "user", "content": "Use the add_numbers tool to compute 17 + 25."}
        ],
        **body,
    }
    return AnthropicIngress().decode_chat(payload)


def chunk(delta=None, finish_reason=None, **choice) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "upstream",
        "choices": [
            {"index": 0, "delta": delta or {}, "finish_reason": finish_reason, **choice}
        ],
    }


def usage_chunk(prompt=61, completion=58, cached=0, cache_write=0) -> dict:
    details = {"cached_tokens": cached}
    if cache_write:
        details["cache_write_tokens"] = cache_write
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": details,
        },
    }


def tool_call(index, id=None, name=None, arguments="") -> dict:
    call = {"index": index, "function": {"arguments": arguments}}
    if id:
        call["id"] = id
        call["type"] = "function"
        call["function"]["name"] = name
    return call


def encode(chunks: list[dict], **body) -> bytes:
    encoder = AnthropicIngress().chat_stream_encoder(request(**body))
    return b"".join(encoder.encode(item) for item in chunks) + encoder.finish()


def events(data: bytes) -> list[tuple[str, dict]]:
    parsed = SSEParser().feed(data)
    return [(item.event, json.loads(item.data)) for item in parsed]


def final_message(data: bytes) -> anthropic.types.Message:
    # The Anthropic SDK sends through httpx2; the mock transport keeps it in-process.
    transport = httpx2.MockTransport(
        lambda _: httpx2.Response(
            200, content=data, headers={"content-type": "text/event-stream"}
        )
    )
    client = anthropic.Anthropic(
        api_key="virtual-key",
        base_url="http://gateway.test",
        http_client=httpx2.Client(transport=transport),
    )
    with client.messages.stream(
        model="gemini-pro", max_tokens=200, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        return stream.get_final_message()


WHOLE_TOOL_CALL = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"tool_calls": [tool_call(0, "call_add", "add_numbers", '{"a":17,"b":25}')]}),
    chunk({}, "tool_calls"),
    usage_chunk(),
]


def test_event_sequence_for_a_whole_tool_call():
    sequence = events(encode(WHOLE_TOOL_CALL))

    names = [name for name, _ in sequence]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = sequence[0][1]["message"]
    assert start["role"] == "assistant"
    assert start["model"] == "gemini-pro"
    assert start["id"].startswith("msg_")
    block = sequence[1][1]
    assert block["index"] == 0
    assert block["content_block"] == {
        "type": "tool_use",
        "id": "call_add",
        "name": "add_numbers",
        "input": {},
    }
    delta = sequence[2][1]
    assert delta["index"] == 0
    assert delta["delta"]["type"] == "input_json_delta"
    assert json.loads(delta["delta"]["partial_json"]) == {"a": 17, "b": 25}
    assert sequence[3][1] == {"type": "content_block_stop", "index": 0}
    message_delta = sequence[4][1]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["output_tokens"] == 58
    assert message_delta["usage"]["input_tokens"] == 61


def test_sdk_reads_a_whole_tool_call():
    message = final_message(encode(WHOLE_TOOL_CALL))

    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert message.content[0].name == "add_numbers"
    assert message.content[0].input == {"a": 17, "b": 25}
    assert message.usage.output_tokens == 58
    assert message.usage.input_tokens == 61


def test_text_and_interleaved_tools_get_dense_block_indices():
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "I'll check "}),
        chunk({"content": "both cities."}),
        chunk({"tool_calls": [tool_call(0, "call_1", "get_weather")]}),
        chunk({"tool_calls": [tool_call(0, arguments='{"city": ')]}),
        chunk({"tool_calls": [tool_call(0, arguments='"Paris"}')]}),
        chunk({"tool_calls": [tool_call(1, "call_2", "get_weather", '{"city":')]}),
        chunk({"tool_calls": [tool_call(1, arguments='"Rome"}')]}),
        chunk({"content": "Done."}),
        chunk({"tool_calls": [tool_call(2, "call_3", "get_time", "{}")]}),
        chunk({}, "tool_calls"),
        usage_chunk(412, 96),
    ]

    data = encode(chunks)
    sequence = events(data)
    message = final_message(data)

    starts = [
        (body["index"], body["content_block"]["type"])
        for name, body in sequence
        if name == "content_block_start"
    ]
    assert starts == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
        (3, "text"),
        (4, "tool_use"),
    ]
    stops = [body["index"] for name, body in sequence if name == "content_block_stop"]
    assert stops == [0, 1, 2, 3, 4]
    assert [block.type for block in message.content] == [
        "text",
        "tool_use",
        "tool_use",
        "text",
        "tool_use",
    ]
    assert message.content[0].text == "I'll check both cities."
    assert message.content[1].input == {"city": "Paris"}
    assert message.content[2].input == {"city": "Rome"}
    assert message.content[3].text == "Done."
    assert message.content[4].id == "call_3"
    assert message.stop_reason == "tool_use"


def test_thinking_text_and_signature_stream():
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Let me "}),
        chunk({"reasoning_content": "think."}),
        chunk(
            {
                "thinking_blocks": [
                    {
                        "type": "thinking",
                        "thinking": "Let me think.",
                        "signature": "sig-1",
                    }
                ]
            }
        ),
        chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": "opaque"}]}),
        chunk({"content": "Answer."}),
        chunk({}, "stop"),
        usage_chunk(10, 20),
    ]

    data = encode(chunks)
    message = final_message(data)

    assert [block.type for block in message.content] == [
        "thinking",
        "redacted_thinking",
        "text",
    ]
    assert message.content[0].thinking == "Let me think."
    assert message.content[0].signature == "sig-1"
    assert message.content[1].data == "opaque"
    assert message.content[2].text == "Answer."
    assert message.stop_reason == "end_turn"


def test_reasoning_without_blocks_from_other_providers():
    chunks = [
        chunk({"reasoning_content": "Hmm."}),
        chunk({"content": "Hi"}),
        chunk({}, "stop"),
    ]

    message = final_message(encode(chunks))

    assert message.content[0].type == "thinking"
    assert message.content[0].thinking == "Hmm."
    assert message.content[1].text == "Hi"


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_use"),
    ],
)
def test_stream_stop_reason_mapping(finish_reason, stop_reason):
    data = encode([chunk({"content": "x"}), chunk({}, finish_reason)])

    message_delta = [body for name, body in events(data) if name == "message_delta"][0]

    assert message_delta["delta"]["stop_reason"] == stop_reason


def test_stream_stop_sequence():
    data = encode([chunk({"content": "x"}), chunk({}, "stop", stop_reason="END")])

    message = final_message(data)

    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "END"


def test_usage_chunk_feeds_message_delta_with_cache_split():
    data = encode(
        [
            chunk({"content": "x"}),
            chunk({}, "stop"),
            usage_chunk(12307, 550, cached=12304),
        ]
    )

    message = final_message(data)

    assert message.usage.input_tokens == 3
    assert message.usage.cache_read_input_tokens == 12304
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens == 550


def test_cache_write_tokens_reach_message_delta():
    data = encode(
        [
            chunk({"content": "x"}),
            chunk({}, "stop"),
            usage_chunk(12307, 550, cache_write=12304),
        ]
    )

    message_delta = [body for name, body in events(data) if name == "message_delta"][0]

    assert message_delta["usage"]["cache_creation_input_tokens"] == 12304
    assert message_delta["usage"]["input_tokens"] == 3


def test_empty_stream_still_has_start_delta_and_stop():
    encoder = AnthropicIngress().chat_stream_encoder(request())

    names = [name for name, _ in events(encoder.finish())]

    assert names == ["message_start", "message_delta", "message_stop"]


def test_late_tool_arguments_dropped():
    chunks = [
        chunk({"tool_calls": [tool_call(0, "call_1", "f", '{"a":')]}),
        chunk({"tool_calls": [tool_call(1, "call_2", "g", "{}")]}),
        chunk({"tool_calls": [tool_call(0, arguments="1}")]}),
        chunk({}, "tool_calls"),
    ]

    sequence = events(encode(chunks))

    deltas = [body for name, body in sequence if name == "content_block_delta"]
    assert [(body["index"], body["delta"]["partial_json"]) for body in deltas] == [
        (0, '{"a":'),
        (1, "{}"),
    ]


def test_error_event_uses_anthropic_error_body():
    encoder = AnthropicIngress().chat_stream_encoder(request())
    overloaded = ProviderStatusError(
        "Overloaded", upstream_status=529, error_type="overloaded_error"
    )

    sequence = events(encoder.error(overloaded)) + events(
        encoder.error(RateLimitError("slow down"))
    )

    assert sequence[0] == (
        "error",
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        },
    )
    assert sequence[1][1]["error"]["type"] == "rate_limit_error"


def test_sdk_raises_on_error_event():
    encoder = AnthropicIngress().chat_stream_encoder(request())
    data = encoder.encode(chunk({"content": "partial"}))
    data += encoder.error(
        ProviderStatusError(
            "Overloaded", upstream_status=529, error_type="overloaded_error"
        )
    )

    with pytest.raises(anthropic.APIStatusError) as raised:
        final_message(data)

    assert "overloaded_error" in str(raised.value.body)
