import json

import openai
import pytest

from apps.audit.models import AuditEvent


@pytest.fixture
def client(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


def test_chat_completion_returns_echo(client, setup, fake_provider):
    completion = client.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hello there"}]
    )

    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == setup.chat
    assert completion.usage.prompt_tokens > 0
    assert fake_provider.requests[-1].json["model"] == "gpt-4o-mini"


def test_streaming_chat_arrives_in_chunks(client, setup):
    stream = client.chat.completions.create(
        model=setup.chat,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert len(chunks) > 2
    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_round_trip(client, setup):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]

    completion = client.chat.completions.create(
        model=setup.chat,
        messages=[{"role": "user", "content": "please call lookup"}],
        tools=tools,
    )

    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    assert isinstance(json.loads(call.function.arguments), dict)


def test_embeddings_float_and_base64(client, setup):
    floats = client.embeddings.create(
        model=setup.embed, input=["a", "b"], encoding_format="float"
    )
    default = client.embeddings.create(model=setup.embed, input=["a", "b"])

    assert len(floats.data) == 2
    assert len(floats.data[0].embedding) == 8
    assert default.data[0].embedding == pytest.approx(
        floats.data[0].embedding, rel=1e-6
    )


def test_models_list_shows_only_allowed(client, setup):
    names = [model.id for model in client.models.list()]

    assert setup.chat in names
    assert "gpt-4o-mini" not in names


def test_every_request_is_audited(client, setup):
    response = client.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": "audit me"}]
    )
    request_id = response.headers["x-request-id"]
    setup.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=request_id)
    assert event.status_code == 200
    assert event.organization_id == setup.tenant.org.pk
    assert event.requested_model == setup.chat
    assert event.upstream_model == "gpt-4o-mini"
    assert event.input_tokens > 0
    assert event.cost_nano_usd > 0
    assert event.ttfb_ms is not None
