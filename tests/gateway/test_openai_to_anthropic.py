"""The official OpenAI SDK reaching an Anthropic upstream through translation."""

import json

import openai
import pytest

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]


@pytest.fixture
def client(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


def test_chat_reaches_anthropic_upstream(client, setup, fake_provider):
    completion = client.chat.completions.create(
        model=setup.claude,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ],
    )

    upstream = fake_provider.requests[-1]
    assert upstream.path == "/v1/messages"
    assert upstream.json["model"] == "claude-sonnet-4-5"
    assert upstream.json["system"] in (
        "Be brief.",
        [{"type": "text", "text": "Be brief."}],
    )
    assert completion.choices[0].message.content == "Echo: hello"
    assert completion.choices[0].finish_reason == "stop"


def test_streamed_tool_calls_have_stable_indices(client, setup):
    stream = client.chat.completions.create(
        model=setup.claude,
        messages=[{"role": "user", "content": "call lookup parallel"}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(
                delta.index, {"id": None, "name": None, "arguments": ""}
            )
            entry["id"] = entry["id"] or delta.id
            entry["name"] = entry["name"] or (
                delta.function.name if delta.function else None
            )
            entry["arguments"] += (
                (delta.function.arguments or "") if delta.function else ""
            )
        finish = chunk.choices[0].finish_reason or finish

    assert sorted(calls) == [0, 1]
    assert all(entry["id"] and entry["name"] == "lookup" for entry in calls.values())
    assert all(
        isinstance(json.loads(entry["arguments"] or "{}"), dict)
        for entry in calls.values()
    )
    assert finish == "tool_calls"


def test_image_parts_reach_anthropic_as_blocks(client, setup, fake_provider):
    client.chat.completions.create(
        model=setup.claude,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:image/png;base64,iVBORw0KGgo=",
                            "detail": "low",
                        },
                    },
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "https://example.com/cat.jpg",
                            "detail": "high",
                        },
                    },
                ],
            }
        ],
    )

    blocks = fake_provider.requests[-1].json["messages"][0]["content"]
    assert blocks[1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": "iVBORw0KGgo=",
    }
    assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}


def test_anthropic_overloaded_keeps_529(client, setup, fake_provider):
    fake_provider.enqueue(
        "/v1/messages",
        {
            "status": 529,
            "json": {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            },
        },
    )

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=setup.claude, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 529
    assert caught.value.body["type"] == "overloaded_error"
