"""Redaction through the gateway with the official SDKs, same-format and translated."""

import json

import anthropic
import openai
import pytest

from apps.audit.models import AuditEvent
from apps.compliance.models import HookStageRecord
from tests.hooks.support import flush_compliance

PII = "Patient Jane Placeholder, SSN 078-05-1120, card 4111 1111 1111 1111, email jane.placeholder@example.test."
VALUES = [
    "078-05-1120",
    "4111 1111 1111 1111",
    "4111111111111111",
    "jane.placeholder@example.test",
]


@pytest.fixture
def redacting(policy):
    policy.add("pii", "request", priority=10)
    policy.add("pii", "response", priority=10)
    return policy


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


@pytest.fixture
def claude(setup):
    return anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )


@pytest.fixture(params=["same_format", "translated"])
def openai_route(request, setup):
    return setup.chat if request.param == "same_format" else setup.claude


@pytest.fixture(params=["same_format", "translated"])
def anthropic_route(request, setup):
    return setup.claude if request.param == "same_format" else setup.chat


def assert_clean(raw: bytes) -> None:
    for value in VALUES:
        assert value.encode() not in raw


def test_chat_request_is_redacted_before_upstream(
    oai, setup, redacting, fake_provider, openai_route
):
    response = oai.chat.completions.with_raw_response.create(
        model=openai_route,
        messages=[
            {"role": "system", "content": "ssn 123-45-6789"},
            {"role": "user", "content": PII},
        ],
    )
    completion = response.parse()

    upstream = fake_provider.requests[-1].body
    assert_clean(upstream)
    assert b"123-45-6789" not in upstream
    assert b"[SSN]" in upstream
    assert b"[CARD]" in upstream
    assert b"[EMAIL]" in upstream
    assert "[EMAIL]" in completion.choices[0].message.content
    setup.gateway.flush_audit()
    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert event.details["hooks"]["decision"] == "redact"
    assert event.details["hooks"]["request"][0]["rule_ids"] == [
        "pii.card",
        "pii.email",
        "pii.us_ssn",
    ]
    assert_clean(json.dumps(event.details).encode())


def test_stage_records_are_stored_separately(
    oai, setup, redacting, fake_provider, openai_route
):
    fake_provider.enqueue(None, {"reply": {"text": "card 4111 1111 1111 1111"}})
    response = oai.chat.completions.with_raw_response.create(
        model=openai_route, messages=[{"role": "user", "content": PII}]
    )
    flush_compliance(setup.gateway)

    records = HookStageRecord.objects.filter(
        request_id=response.headers["x-request-id"]
    )

    assert sorted(records.values_list("stage", "decision")) == [
        ("request", "redact"),
        ("response", "redact"),
    ]
    assert all(record.duration_ms >= 0 for record in records)


def test_messages_request_is_redacted_before_upstream(
    claude, redacting, fake_provider, anthropic_route
):
    message = claude.messages.create(
        model=anthropic_route,
        max_tokens=100,
        system="mail ops@example.test",
        messages=[{"role": "user", "content": PII}],
    )

    upstream = fake_provider.requests[-1].body
    assert_clean(upstream)
    assert b"ops@example.test" not in upstream
    assert "[CARD]" in message.content[0].text


def test_streamed_chat_is_redacted_across_chunks(
    oai, redacting, fake_provider, openai_route
):
    fake_provider.enqueue(
        None,
        {
            "reply": {
                "text": "Your card 4111 1111 1111 1111 and phone (415) 555-2671 are on file."
            }
        },
    )

    stream = oai.chat.completions.create(
        model=openai_route, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
    )

    assert text == "Your card [CARD] and phone [PHONE] are on file."


def test_streamed_message_is_redacted_across_chunks(
    claude, redacting, fake_provider, anthropic_route
):
    fake_provider.enqueue(
        None, {"reply": {"text": "Card 4111 1111 1111 1111 is stored."}}
    )

    with claude.messages.stream(
        model=anthropic_route,
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        text = "".join(stream.text_stream)

    assert text == "Card [CARD] is stored."


def test_email_split_inside_a_word_is_redacted(oai, setup, redacting, fake_provider):
    chunks = []
    for piece in ["Write to jane.pla", "ceholder@exa", "mple.test today."]:
        chunks.append(
            json.dumps(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "gpt-4o-mini",
                    "choices": [
                        {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                    ],
                }
            )
        )
    chunks.append(
        json.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
    )
    fake_provider.enqueue(
        "/chat/completions",
        {
            "sse": "".join(f"data: {c}\n\n" for c in chunks) + "data: [DONE]\n\n",
            "headers": {"content-type": "text/event-stream"},
        },
    )

    stream = oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
    )

    assert text == "Write to [EMAIL] today."


def test_tool_call_arguments_and_results_are_redacted_in_requests(
    oai, redacting, fake_provider, openai_route
):
    messages = [
        {"role": "user", "content": "look the customer up"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "arguments": json.dumps(
                            {"email": "jane.placeholder@example.test"}
                        ),
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "found SSN 078-05-1120 and card 4111111111111111",
        },
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"email": {"type": "string"}},
                },
            },
        }
    ]

    oai.chat.completions.create(model=openai_route, messages=messages, tools=tools)

    upstream = fake_provider.requests[-1].body
    assert_clean(upstream)
    assert b"[EMAIL]" in upstream
    assert b"[SSN]" in upstream


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_arguments_are_redacted_in_answers(
    oai, redacting, fake_provider, openai_route, stream
):
    arguments = json.dumps(
        {"to": "jane.placeholder@example.test", "note": "card 4111 1111 1111 1111"}
    )
    fake_provider.enqueue(
        None,
        {
            "reply": {
                "text": "",
                "tool_calls": [{"name": "send", "arguments": arguments}],
                "finish_reason": "tool_calls",
            }
        },
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "send",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    request = {
        "model": openai_route,
        "messages": [{"role": "user", "content": "send it"}],
        "tools": tools,
    }

    if stream:
        parts = [
            call.function.arguments or ""
            for chunk in oai.chat.completions.create(stream=True, **request)
            if chunk.choices
            for call in chunk.choices[0].delta.tool_calls or []
            if call.function
        ]
        sent = "".join(parts)
    else:
        sent = (
            oai.chat.completions.create(**request)
            .choices[0]
            .message.tool_calls[0]
            .function.arguments
        )

    assert json.loads(sent) == {"to": "[EMAIL]", "note": "card [CARD]"}


def test_tool_use_input_is_redacted_for_anthropic_callers(
    claude, redacting, fake_provider, anthropic_route
):
    arguments = json.dumps({"to": "jane.placeholder@example.test"})
    fake_provider.enqueue(
        None,
        {
            "reply": {
                "text": "",
                "tool_calls": [{"name": "send", "arguments": arguments}],
                "finish_reason": "tool_calls",
            }
        },
    )
    tools = [{"name": "send", "input_schema": {"type": "object", "properties": {}}}]

    message = claude.messages.create(
        model=anthropic_route,
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "send"}],
    )

    tool_use = next(block for block in message.content if block.type == "tool_use")
    assert tool_use.input == {"to": "[EMAIL]"}


def test_tool_result_is_redacted_for_anthropic_callers(
    claude, redacting, fake_provider, anthropic_route
):
    claude.messages.create(
        model=anthropic_route,
        max_tokens=100,
        tools=[
            {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
        ],
        messages=[
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "lookup",
                        "input": {"q": "jane.placeholder@example.test"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "SSN 078-05-1120",
                    }
                ],
            },
        ],
    )

    assert_clean(fake_provider.requests[-1].body)


def test_embeddings_input_is_redacted(oai, setup, redacting, fake_provider):
    oai.embeddings.create(
        model=setup.embed, input=["mail jane.placeholder@example.test", "plain text"]
    )

    sent = fake_provider.requests[-1].json["input"]
    assert sent == ["mail [EMAIL]", "plain text"]


def test_embeddings_single_string_is_redacted(oai, setup, redacting, fake_provider):
    oai.embeddings.create(model=setup.embed, input="ssn 078-05-1120")

    assert fake_provider.requests[-1].json["input"] in ("ssn [SSN]", ["ssn [SSN]"])
