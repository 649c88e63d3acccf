"""POST /v1/responses with the official OpenAI SDK: passed through to OpenAI, translated
for Anthropic, streamed and not, with tool calls and previous_response_id."""

import json

import openai
import pytest
import redis
from django.conf import settings

from apps.audit.models import AuditEvent
from tests.support.factories import make_tenant

LOOKUP = {
    "type": "function",
    "name": "lookup",
    "description": "Look a city up.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture
def client(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


@pytest.fixture(params=["openai", "anthropic"])
def upstream(request, setup):
    """The public model name and upstream path of a passthrough and a translated model."""
    if request.param == "openai":
        return setup.chat, "/v1/responses"
    return setup.claude, "/v1/messages"


def without_repeats(kinds):
    return [kind for i, kind in enumerate(kinds) if i == 0 or kind != kinds[i - 1]]


def test_text_answer(client, upstream, fake_provider):
    model, path = upstream

    response = client.responses.create(
        model=model, input="hello there", instructions="Be brief."
    )

    sent = fake_provider.requests[-1]
    assert sent.path == path
    assert response.output_text == "Echo: hello there"
    assert response.status == "completed"
    assert response.model == model
    assert response.id.startswith("resp_")
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )


def test_openai_upstream_gets_the_body_unchanged(client, setup, fake_provider):
    client.responses.create(
        model=setup.chat,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        instructions="Be brief.",
        metadata={"team": "a"},
    )

    sent = fake_provider.requests[-1].json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["instructions"] == "Be brief."
    assert sent["metadata"] == {"team": "a"}
    assert sent["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    ]


def test_anthropic_upstream_gets_a_translated_request(client, setup, fake_provider):
    client.responses.create(
        model=setup.claude,
        instructions="Be brief.",
        input="hello",
        max_output_tokens=300,
        temperature=0.5,
    )

    sent = fake_provider.requests[-1].json
    assert sent["model"] == "claude-sonnet-4-5"
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent["max_tokens"] == 300
    assert sent["temperature"] == 0.5
    assert sent["messages"][0]["role"] == "user"


def test_streamed_text_events(client, upstream):
    model, _ = upstream

    with client.responses.stream(model=model, input="one two three") as stream:
        events = list(stream)
        final = stream.get_final_response()

    kinds = [event.type for event in events]
    assert without_repeats(kinds) == TEXT_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text == "Echo: one two three"
    assert final.status == "completed"
    assert final.usage.output_tokens == 4


def test_streamed_text_with_stream_true(client, setup):
    stream = client.responses.create(model=setup.claude, input="a b", stream=True)
    events = list(stream)

    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    done = [e for e in events if e.type == "response.output_text.done"][0]
    assert "".join(deltas) == "Echo: a b"
    assert done.text == "Echo: a b"
    assert events[-1].response.output[0].content[0].text == "Echo: a b"


def test_function_call_round_trip(client, upstream, fake_provider):
    model, _ = upstream

    first = client.responses.create(
        model=model, input="please call lookup", tools=[LOOKUP]
    )
    call = [item for item in first.output if item.type == "function_call"][0]
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        ],
        tools=[LOOKUP],
    )

    assert call.name == "lookup"
    assert json.loads(call.arguments) == {"city": "test"}
    assert second.output_text == "Echo: please call lookup"
    assert not [item for item in second.output if item.type == "function_call"]


def test_tool_round_trip_reaches_anthropic_as_blocks(client, setup, fake_provider):
    first = client.responses.create(
        model=setup.claude, input="please call lookup", tools=[LOOKUP]
    )
    call = first.output[-1]
    client.responses.create(
        model=setup.claude,
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        ],
        tools=[LOOKUP],
    )

    messages = fake_provider.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    tool_use = messages[1]["content"][-1]
    assert tool_use["type"] == "tool_use"
    assert tool_use["id"] == call.call_id
    assert tool_use["input"] == {"city": "test"}
    tool_result = messages[2]["content"][0]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == call.call_id


def test_streamed_function_call_events(client, upstream):
    model, _ = upstream

    with client.responses.stream(
        model=model, input="please call lookup", tools=[LOOKUP]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()

    kinds = without_repeats([event.type for event in events])
    assert kinds[:3] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done[0].arguments) == {"city": "test"}
    call = final.output[-1]
    assert call.type == "function_call"
    assert call.name == "lookup"
    assert json.loads(call.arguments) == {"city": "test"}


def test_previous_response_history_reaches_upstream(client, upstream, fake_provider):
    model, path = upstream
    first = client.responses.create(model=model, input="my name is Ann")

    second = client.responses.create(
        model=model, input="what is my name", previous_response_id=first.id
    )

    sent = fake_provider.requests[-1].json
    assert second.output_text == "Echo: what is my name"
    assert "previous_response_id" not in sent
    if path == "/v1/responses":
        texts = [json.dumps(item) for item in sent["input"]]
    else:
        texts = [json.dumps(message) for message in sent["messages"]]
    assert "my name is Ann" in texts[0]
    assert "Echo: my name is Ann" in texts[1]
    assert "what is my name" in texts[2]


def test_streamed_response_can_be_continued(client, upstream):
    model, _ = upstream
    with client.responses.stream(model=model, input="first turn") as stream:
        first = stream.get_final_response()

    second = client.responses.create(
        model=model, input="second turn", previous_response_id=first.id
    )

    assert second.output_text == "Echo: second turn"


def test_unknown_previous_response_is_404(client, setup):
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(
            model=setup.claude, input="hi", previous_response_id="resp_missing"
        )

    error = caught.value.body
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"
    assert error["type"] == "invalid_request_error"
    assert "resp_missing" in error["message"]


def test_other_org_previous_response_is_404(client, setup, db_rows):
    first = client.responses.create(model=setup.claude, input="secret")
    stranger = make_tenant()
    setup.gateway.refresh()
    other = openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=stranger.key, max_retries=0
    )

    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(
            model=setup.claude, input="hi", previous_response_id=first.id
        )

    assert caught.value.body["code"] == "previous_response_not_found"


def test_store_false_skips_storing(client, upstream):
    model, _ = upstream
    first = client.responses.create(model=model, input="forget me", store=False)

    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model=model, input="again", previous_response_id=first.id
        )

    assert first.store is False


def test_json_schema_text_format_is_emulated_on_anthropic(client, setup, fake_provider):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    # The fake model calls a tool only when asked in words, so the forced call of
    # the emulating tool is scripted.
    fake_provider.enqueue(
        "/v1/messages",
        {
            "reply": {
                "tool_calls": [
                    {"name": "json_response", "arguments": {"answer": "yes"}}
                ]
            }
        },
    )

    response = client.responses.create(
        model=setup.claude,
        input="answer in json",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema}},
    )

    sent = fake_provider.requests[-1].json
    assert sent["tool_choice"]["type"] == "tool"
    assert json.loads(response.output_text) == {"answer": "yes"}
    assert response.status == "completed"
    assert response.text.format.type == "json_schema"


def test_reasoning_effort_returns_a_reasoning_item(client, setup, fake_provider):
    response = client.responses.create(
        model=setup.claude,
        input="think hard",
        reasoning={"effort": "low"},
        max_output_tokens=8000,
    )

    assert fake_provider.requests[-1].json["thinking"]["type"] == "enabled"
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.content[0].text == "Thinking about: think hard"
    assert response.output_text == "Echo: think hard"
    assert response.reasoning.effort == "low"


def test_streamed_reasoning_events(client, setup):
    stream = client.responses.create(
        model=setup.claude,
        input="think hard",
        reasoning={"effort": "low"},
        max_output_tokens=8000,
        stream=True,
    )
    events = list(stream)

    kinds = without_repeats([event.type for event in events])
    assert kinds[2:5] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
    ]
    assert events[-1].response.output[0].type == "reasoning"
    assert events[-1].response.output[1].type == "message"


def test_token_limit_makes_the_response_incomplete(client, setup):
    response = client.responses.create(
        model=setup.claude, input="a long reply please", max_output_tokens=2
    )

    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Echo: a"


def test_images_reach_anthropic(client, setup, fake_provider):
    client.responses.create(
        model=setup.claude,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "compare"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                    },
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.jpg",
                        "detail": "low",
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


def test_built_in_tools_need_an_openai_upstream(client, setup, fake_provider):
    tools = [{"type": "web_search"}]

    passed = client.responses.create(model=setup.chat, input="news", tools=tools)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=setup.claude, input="news", tools=tools)

    assert passed.output_text == "Echo: news"
    assert "web_search tool" in caught.value.body["message"]
    assert fake_provider.requests[-1].path == "/v1/responses"


def test_upstream_rate_limit_keeps_status(client, setup, fake_provider):
    fake_provider.enqueue(
        "/v1/responses",
        {"status": 429, "error": {"type": "rate_limit_error", "message": "Slow down."}},
    )

    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=setup.chat, input="hi")


def test_invalid_input_is_400(client, setup):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=setup.claude, input=[{"type": "computer_call_output"}]
        )

    assert caught.value.body["param"] == "input[0].type"


def test_streamed_passthrough_is_audited_with_usage(client, setup):
    response = client.responses.with_raw_response.create(
        model=setup.chat, input="audit me", stream=True
    )
    list(response.parse())
    setup.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert event.ingress == "responses"
    assert event.status_code == 200
    assert event.input_tokens > 0
    assert event.output_tokens == 3
    assert event.upstream_model == "gpt-4o-mini"


@pytest.mark.shared_servers
def test_stored_record_expires_and_drops_gateway_ids(client, setup):
    response = client.responses.create(
        model=setup.claude, input="please call lookup", tools=[LOOKUP]
    )
    key = f"nexus:responses:{setup.tenant.org.pk}:{response.id}"
    connection = redis.Redis.from_url(settings.REDIS_URL)

    record = json.loads(connection.get(key))
    ttl = connection.ttl(key)

    assert 0 < ttl <= settings.NEXUS_RESPONSES_TTL_SECONDS
    assert record["input"] == [
        {"type": "message", "role": "user", "content": "please call lookup"}
    ]
    assert record["output"] == [
        {
            "type": "function_call",
            "call_id": response.output[0].call_id,
            "name": "lookup",
            "arguments": '{"city":"test"}',
        }
    ]
