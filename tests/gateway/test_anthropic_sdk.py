"""The official Anthropic SDK through /v1/messages, to Anthropic and OpenAI upstreams."""

import anthropic
import pytest

from apps.audit.models import AuditEvent

TOOLS = [
    {
        "name": "lookup",
        "description": "Look a word up.",
        "input_schema": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    }
]


@pytest.fixture
def client(setup):
    return anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )


@pytest.fixture(params=["same_format", "cross_format"])
def model(request, setup):
    return setup.claude if request.param == "same_format" else setup.chat


def test_message_returns_echo(client, model):
    message = client.messages.create(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "hello there"}],
    )

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


def test_streaming_message_arrives_in_events(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "one two three"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Echo: one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_tool_use_and_result(client, model):
    first = client.messages.create(
        model=model,
        max_tokens=100,
        tools=TOOLS,
        messages=[{"role": "user", "content": "please call lookup"}],
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")

    second = client.messages.create(
        model=model,
        max_tokens=100,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "please call lookup"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "content": "a greeting",
                    }
                ],
            },
        ],
    )

    assert first.stop_reason == "tool_use"
    assert tool_use.name == "lookup"
    assert isinstance(tool_use.input, dict)
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


def test_streamed_parallel_tool_calls(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=100,
        tools=TOOLS,
        messages=[{"role": "user", "content": "call lookup parallel"}],
    ) as stream:
        final = stream.get_final_message()

    uses = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use"
    assert len(uses) == 2
    assert len({use.id for use in uses}) == 2
    assert all(isinstance(use.input, dict) for use in uses)


def test_message_is_audited(client, setup, model):
    response = client.messages.with_raw_response.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "audit me"}]
    )
    setup.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert event.ingress == "messages"
    assert event.status_code == 200
    assert event.input_tokens > 0
    assert event.output_tokens > 0


def test_x_api_key_header_is_accepted(setup):
    import httpx

    response = httpx.post(
        f"{setup.gateway.url}/v1/messages",
        json={
            "model": setup.claude,
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": setup.key, "anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 200


def test_bad_key_gets_anthropic_error(setup):
    client = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key="nvk_wrong", max_retries=0
    )

    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(
            model=setup.claude,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
        )

    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_sdk_sees_the_audit_request_id(client, model, setup):
    message = client.messages.create(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "which request was this"}],
    )
    setup.gateway.flush_audit()

    assert message._request_id
    assert AuditEvent.objects.filter(request_id=message._request_id).exists()


def test_sdk_error_names_the_request(client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="no-such-model",
            max_tokens=100,
            messages=[{"role": "user", "content": "hello"}],
        )

    request_id = caught.value.response.headers["x-request-id"]
    assert caught.value.request_id == request_id
    assert caught.value.body["request_id"] == request_id
