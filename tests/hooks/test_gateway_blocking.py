"""Blocking through the gateway: request blocks, mid-stream blocks, fail modes."""

import anthropic
import openai
import pytest

from apps.audit.models import AuditEvent
from apps.compliance.models import HookStageRecord
from tests.hooks.servers import HttpPeer
from tests.hooks.support import flush_compliance


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


@pytest.fixture
def detector(policy):
    peer = HttpPeer().start()
    policy.allow_host("127.0.0.1")
    yield peer
    peer.close()


@pytest.fixture
def codewords(policy):
    return policy.add(
        "rules",
        "request",
        options={"rules": [{"id": "codes:1", "keyword": "Project Falcon"}]},
    )


@pytest.mark.parametrize("route", ["chat", "claude"])
def test_request_block_answers_openai_error(
    oai, setup, codewords, fake_provider, route
):
    before = len(fake_provider.requests)

    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model=getattr(setup, route),
            messages=[{"role": "user", "content": "status of project falcon?"}],
        )

    assert caught.value.code == "policy_violation"
    assert "Blocked by the" in caught.value.message
    assert len(fake_provider.requests) == before


@pytest.mark.parametrize("route", ["claude", "chat"])
def test_request_block_answers_anthropic_error(
    claude, setup, codewords, fake_provider, route
):
    before = len(fake_provider.requests)

    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model=getattr(setup, route),
            max_tokens=50,
            messages=[{"role": "user", "content": "Project Falcon?"}],
        )

    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert len(fake_provider.requests) == before


def test_block_in_embeddings_input(oai, setup, codewords, fake_provider):
    before = len(fake_provider.requests)

    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=setup.embed, input=["about project falcon"])

    assert len(fake_provider.requests) == before


def test_block_mid_stream_ends_openai_stream_with_error(
    oai, setup, policy, fake_provider
):
    policy.add(
        "rules",
        "response",
        options={"rules": [{"id": "leak:1", "keyword": "internal codename"}]},
    )
    fake_provider.enqueue(
        None, {"reply": {"text": "word " * 80 + "the internal codename is out"}}
    )

    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            received.append(
                chunk.choices[0].delta.content or "" if chunk.choices else ""
            )

    assert "Blocked by the" in str(caught.value)
    assert "codename" not in "".join(received)


def test_block_mid_stream_ends_anthropic_stream_with_error(
    claude, setup, policy, fake_provider
):
    policy.add(
        "rules",
        "response",
        options={"rules": [{"id": "leak:1", "keyword": "internal codename"}]},
    )
    fake_provider.enqueue(
        None, {"reply": {"text": "word " * 80 + "the internal codename is out"}}
    )

    received = []
    with pytest.raises(anthropic.APIError):
        with claude.messages.stream(
            model=setup.claude,
            max_tokens=400,
            messages=[{"role": "user", "content": "hi"}],
        ) as stream:
            received.extend(stream.text_stream)

    assert "codename" not in "".join(received)


def test_block_in_complete_answer(oai, setup, policy, fake_provider):
    policy.add(
        "rules",
        "response",
        options={"rules": [{"id": "leak:1", "keyword": "internal codename"}]},
    )
    fake_provider.enqueue(None, {"reply": {"text": "the internal codename is out"}})

    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(
            model=setup.claude, messages=[{"role": "user", "content": "hi"}]
        )


def failing_webhook(policy, detector, **fields):
    return policy.add(
        "webhook", "request", options={"url": detector.url + "/decide"}, **fields
    )


def audited(setup, request_id):
    flush_compliance(setup.gateway)
    return AuditEvent.objects.get(request_id=request_id), list(
        HookStageRecord.objects.filter(request_id=request_id)
    )


def test_fail_closed_hook_error_blocks_and_is_audited(
    oai, setup, policy, detector, fake_provider
):
    detector.status = 500
    failing_webhook(policy, detector)
    before = len(fake_provider.requests)

    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.with_raw_response.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 503
    assert caught.value.code == "hook_failed"
    assert len(fake_provider.requests) == before
    event, records = audited(setup, caught.value.response.headers["x-request-id"])
    assert event.status_code == 503
    assert event.details["hooks"]["request"][0]["outcome"] == "error_fail_closed"
    assert records[0].outcome == "error_fail_closed"
    assert records[0].reason == "the decision service responded with HTTP 500"


def test_fail_closed_hook_timeout_blocks(oai, setup, policy, detector, fake_provider):
    detector.delay = 2.0
    failing_webhook(policy, detector, timeout_ms=100)

    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}]
        )

    event, records = audited(setup, caught.value.response.headers["x-request-id"])
    assert records[0].outcome == "timeout_fail_closed"
    assert event.details["hooks"]["decision"] == "block"


@pytest.mark.parametrize("failure", ["error", "timeout"])
def test_fail_open_hook_lets_request_through_and_is_audited(
    oai, setup, policy, detector, fake_provider, failure
):
    if failure == "error":
        detector.status = 500
    else:
        detector.delay = 2.0
    failing_webhook(policy, detector, fail_open=True, timeout_ms=100)

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert response.parse().choices[0].message.content == "Echo: hi"
    event, records = audited(setup, response.headers["x-request-id"])
    assert event.status_code == 200
    assert event.details["hooks"]["unscanned"] is True
    assert records[0].outcome == f"{failure}_fail_open"
    assert records[0].decision == "approve"


@pytest.mark.parametrize("route", ["chat", "claude"])
def test_block_in_tool_result_and_arguments(
    oai, setup, codewords, fake_provider, route
):
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "status"}'},
    }
    messages = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Project Falcon is late"},
    ]
    in_arguments = [
        {"role": "user", "content": "look it up"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    **tool_call,
                    "function": {
                        "name": "lookup",
                        "arguments": '{"q": "project falcon"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "nothing"},
    ]
    before = len(fake_provider.requests)

    for conversation in (messages, in_arguments):
        with pytest.raises(openai.BadRequestError):
            oai.chat.completions.create(
                model=getattr(setup, route), messages=conversation
            )

    assert len(fake_provider.requests) == before
