"""The anthropic SDK through /v1/messages to a Bedrock upstream, streamed and not."""

import anthropic
import pytest

from tests.providers.test_bedrock import bedrock  # noqa: F401

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


@pytest.fixture
def client(bedrock):  # noqa: F811
    return anthropic.Anthropic(
        base_url=bedrock.gateway.url, api_key=bedrock.key, max_retries=0
    )


def test_message_reaches_bedrock(client, bedrock, fake_provider):  # noqa: F811
    message = client.messages.create(
        model=bedrock.chat,
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
    )

    sent = [r for r in fake_provider.requests if r.path.endswith("/converse")][-1]
    assert message.content[0].text == "Echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert sent.json["system"] == [{"text": "Be brief."}]


def test_streamed_message_from_bedrock(client, bedrock):  # noqa: F811
    with client.messages.stream(
        model=bedrock.chat,
        max_tokens=100,
        messages=[{"role": "user", "content": "one two three"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Echo: one two three"
    assert final.stop_reason == "end_turn"


def test_streamed_tool_use_from_bedrock(client, bedrock):  # noqa: F811
    with client.messages.stream(
        model=bedrock.chat,
        max_tokens=100,
        tools=TOOLS,
        messages=[{"role": "user", "content": "call get_weather"}],
    ) as stream:
        final = stream.get_final_message()

    uses = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use"
    assert len(uses) == 1
    assert uses[0].name == "get_weather"
    assert "city" in uses[0].input
