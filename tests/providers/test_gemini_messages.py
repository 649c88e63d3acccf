"""The anthropic SDK on /v1/messages with a Gemini model behind the gateway."""

import json
from types import SimpleNamespace

import anthropic
import pytest

from tests.support.factories import make_connection, make_model, make_tenant

ADD_NUMBERS = {
    "name": "add_numbers",
    "description": "Add two numbers.",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}
PROMPT = "Use the add_numbers tool to compute 17 + 25."
SIGNATURE = "c2lnLXN5bnRoZXRpYy0wMQ=="
# Gemini sends a whole functionCall, arguments included, in one event.
FUNCTION_CALL_EVENT = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "functionCall": {
                            "name": "add_numbers",
                            "args": {"a": 17, "b": 25},
                        },
                        "thoughtSignature": SIGNATURE,
                    }
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 61,
        "candidatesTokenCount": 18,
        "totalTokenCount": 119,
        "thoughtsTokenCount": 40,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 61}],
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "fake-resp-0002",
}


@pytest.fixture
def gemini(fake_provider, gateway, db_rows):
    connection = make_connection("gemini", fake_provider.url, "gemini-key")
    setup = SimpleNamespace(
        model=make_model(connection, "gemini-2.5-pro").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    gateway.refresh()
    return setup


@pytest.fixture
def client(gemini):
    return anthropic.Anthropic(
        base_url=gemini.gateway.url, api_key=gemini.key, max_retries=0
    )


def last_request(fake_provider):
    return [
        request for request in fake_provider.requests if "/models/" in request.path
    ][-1]


def stream_function_call(fake_provider, client, model):
    fake_provider.enqueue(
        ":streamGenerateContent",
        {"sse": "data: " + json.dumps(FUNCTION_CALL_EVENT) + "\r\n\r\n"},
    )
    stream = client.messages.create(
        model=model,
        max_tokens=200,
        stream=True,
        tools=[ADD_NUMBERS],
        messages=[{"role": "user", "content": PROMPT}],
    )
    return list(stream)


def test_streamed_function_call_arrives_with_its_arguments(
    client, gemini, fake_provider
):
    events = stream_function_call(fake_provider, client, gemini.model)

    start = next(event for event in events if event.type == "content_block_start")
    deltas = [event for event in events if event.type == "content_block_delta"]
    stops = [event for event in events if event.type == "content_block_stop"]
    message_delta = next(event for event in events if event.type == "message_delta")
    assert events[0].type == "message_start"
    assert events[0].message.role == "assistant"
    assert events[0].message.model == gemini.model
    assert start.content_block.type == "tool_use"
    assert start.content_block.id
    assert start.content_block.name == "add_numbers"
    assert start.content_block.input == {}
    assert all(delta.index == start.index for delta in deltas)
    assert {delta.delta.type for delta in deltas} == {"input_json_delta"}
    assert json.loads("".join(delta.delta.partial_json for delta in deltas)) == {
        "a": 17,
        "b": 25,
    }
    assert [stop.index for stop in stops] == [start.index]
    assert message_delta.delta.stop_reason == "tool_use"
    assert message_delta.usage.output_tokens == 58
    assert events[-1].type == "message_stop"


def test_streamed_function_call_request_reaches_gemini_translated(
    client, gemini, fake_provider
):
    stream_function_call(fake_provider, client, gemini.model)

    sent = last_request(fake_provider)
    assert sent.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert sent.json["contents"] == [{"role": "user", "parts": [{"text": PROMPT}]}]
    assert sent.json["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "add_numbers",
                    "description": "Add two numbers.",
                    "parameters": ADD_NUMBERS["input_schema"],
                }
            ]
        }
    ]
    assert sent.json["generationConfig"]["maxOutputTokens"] == 200


def test_tool_result_turn_returns_call_name_and_signature(
    client, gemini, fake_provider
):
    events = stream_function_call(fake_provider, client, gemini.model)
    tool_use = next(
        event for event in events if event.type == "content_block_start"
    ).content_block

    reply = client.messages.create(
        model=gemini.model,
        max_tokens=200,
        tools=[ADD_NUMBERS],
        messages=[
            {"role": "user", "content": PROMPT},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": tool_use.id,
                        "name": "add_numbers",
                        "input": {"a": 17, "b": 25},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "42"}
                ],
            },
        ],
    )

    contents = last_request(fake_provider).json["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "add_numbers", "args": {"a": 17, "b": 25}},
                "thoughtSignature": SIGNATURE,
            }
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "add_numbers", "response": {"output": "42"}}}
        ],
    }
    assert reply.stop_reason == "end_turn"


def test_non_streamed_function_call_becomes_tool_use(client, gemini, fake_provider):
    fake_provider.enqueue(":generateContent", {"json": FUNCTION_CALL_EVENT})

    message = client.messages.create(
        model=gemini.model,
        max_tokens=200,
        tools=[ADD_NUMBERS],
        messages=[{"role": "user", "content": PROMPT}],
    )

    tool_use = message.content[0]
    assert tool_use.type == "tool_use"
    assert tool_use.input == {"a": 17, "b": 25}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 61
    assert message.usage.output_tokens == 58


def test_thinking_budget_reaches_gemini_and_thoughts_come_back(
    client, gemini, fake_provider
):
    with client.messages.stream(
        model=gemini.model,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1500},
        messages=[{"role": "user", "content": "think hard"}],
    ) as stream:
        final = stream.get_final_message()

    thinking = [block for block in final.content if block.type == "thinking"]
    text = [block for block in final.content if block.type == "text"]
    config = last_request(fake_provider).json["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1500, "includeThoughts": True}
    assert thinking[0].thinking == "Thinking about: think hard"
    assert thinking[-1].signature.startswith("gemini:")
    assert [block.text for block in text] == ["Echo: think hard"]


def test_text_signature_goes_back_with_the_next_turn(client, gemini, fake_provider):
    first = client.messages.create(
        model=gemini.model,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1500},
        messages=[{"role": "user", "content": "think hard"}],
    )

    client.messages.create(
        model=gemini.model,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1500},
        messages=[
            {"role": "user", "content": "think hard"},
            {
                "role": "assistant",
                "content": [block.model_dump() for block in first.content],
            },
            {"role": "user", "content": "and again"},
        ],
    )

    signature = next(
        block for block in first.content if block.type == "thinking"
    ).signature
    model_turn = last_request(fake_provider).json["contents"][1]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "text": "Echo: think hard",
                "thoughtSignature": signature.removeprefix("gemini:"),
            }
        ],
    }
