"""The Responses API ingress: decoding into canonical requests and encoding results."""

import orjson
import pytest

from nexus.engine.canonical import ChatResult, Usage
from nexus.engine.errors import InvalidRequestError
from nexus.engine.ingress.responses import ResponsesIngress
from nexus.engine.ingress.responses_encode import context_of

INGRESS = ResponsesIngress()


def decode(**body):
    return INGRESS.decode_chat({"model": "m", **body})


def events(data: bytes):
    parsed = []
    for block in data.decode().strip().split("\n\n"):
        name, payload = block.split("\n", 1)
        parsed.append((name.removeprefix("event: "), orjson.loads(payload[6:])))
    return parsed


def test_string_input_and_instructions():
    request = decode(input="hello", instructions="Be brief.")

    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert context_of(request).input_items == [
        {"type": "message", "role": "user", "content": "hello"}
    ]


def test_function_calls_join_the_assistant_turn():
    request = decode(
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": ""}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": "warm"},
        ]
    )

    assistant = request.messages[1]
    assert assistant["role"] == "assistant"
    assert assistant["content"] is None
    assert [call["id"] for call in assistant["tool_calls"]] == ["c1", "c2"]
    assert request.messages[2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "warm"},
    ]


def test_parameters_are_translated():
    request = decode(
        input="hi",
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        tool_choice={"type": "function", "name": "f"},
        text={"format": {"type": "json_object"}},
        reasoning={"effort": "high"},
        max_output_tokens=100,
        temperature=0.1,
    )

    body = request.body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}},
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["response_format"] == {"type": "json_object"}
    assert body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 100
    assert body["temperature"] == 0.1


def test_openai_only_features_are_recorded():
    request = decode(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "see"},
                    {"type": "input_image", "file_id": "file_1"},
                ],
            }
        ],
        tools=[{"type": "web_search"}],
    )

    assert context_of(request).native_only == [
        "input[0].content[1] (image file_id)",
        "tools[0] (web_search tool)",
    ]
    assert "tools" not in request.body
    assert request.messages[0]["content"] == "see"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "input"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "store": "yes"}, "store"),
        ({"input": [{"type": "file_search_call"}]}, "input[0].type"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format"),
    ],
)
def test_invalid_requests_name_the_parameter(fields, param):
    with pytest.raises(InvalidRequestError) as caught:
        decode(**fields)

    assert caught.value.param == param


def chunk(delta, finish_reason=None):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def test_stream_encoder_orders_items_and_numbers_events():
    request = decode(input="hi", stream=True)
    encoder = INGRESS.chat_stream_encoder(request)
    call = {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": ""}}
    second = {"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{"}}

    data = b"".join(
        [
            encoder.encode(chunk({"reasoning_content": "think"})),
            encoder.encode(chunk({"content": "Hi"})),
            encoder.encode(chunk({"tool_calls": [call]})),
            encoder.encode(chunk({"tool_calls": [second]})),
            encoder.encode(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
            ),
            encoder.encode(
                chunk({"tool_calls": [{"index": 1, "function": {"arguments": "}"}}]})
            ),
            encoder.encode(chunk({}, "tool_calls")),
            encoder.encode(
                {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
            ),
            encoder.finish(),
        ]
    )

    parsed = events(data)
    assert [payload["sequence_number"] for _, payload in parsed] == list(
        range(len(parsed))
    )
    assert all(name == payload["type"] for name, payload in parsed)
    final = parsed[-1][1]["response"]
    assert parsed[-1][0] == "response.completed"
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][2]["arguments"] == "{}"
    assert final["output"][3]["arguments"] == "{}"
    assert final["usage"]["input_tokens"] == 5
    assert final["usage"]["output_tokens"] == 7
    assert context_of(request).final == final


def test_length_finish_makes_an_incomplete_response():
    request = decode(input="hi")
    body = {
        "choices": [
            {"index": 0, "message": {"content": "Hi"}, "finish_reason": "length"}
        ]
    }

    response = INGRESS.encode_chat(ChatResult(body, Usage(3, 1)), request)

    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def test_content_filter_finish_names_the_reason():
    request = decode(input="hi")
    body = {
        "choices": [
            {"index": 0, "message": {"content": ""}, "finish_reason": "content_filter"}
        ]
    }

    response = INGRESS.encode_chat(ChatResult(body, Usage()), request)

    assert response["incomplete_details"] == {"reason": "content_filter"}
