"""An external PII detector that fails must not let PII through unless configured to.

With the detector down, a fail-closed policy sends nothing upstream and answers 503
naming the policy; fail-open is an explicit choice and those requests are audited
as unscanned. With the detector up, its findings (SSN, card, email and a person's
name) are masked before the provider sees the request, keeping the messages and
roles as they were.
"""

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from apps.audit.models import AuditEvent
from tests.hooks.servers import HttpPeer
from tests.hooks.support import flush_compliance

PROMPT = (
    "Patient Jane Placeholder, SSN 078-05-1120, card 4111 1111 1111 1111, "
    "email jane.placeholder@example.test. Summarise her visit."
)
FINDINGS = {
    "Jane Placeholder": "PERSON",
    "078-05-1120": "US_SSN",
    "4111 1111 1111 1111": "CREDIT_CARD",
    "jane.placeholder@example.test": "EMAIL_ADDRESS",
}
MUST_NOT_REACH = [
    "078-05-1120",
    "4111 1111 1111 1111",
    "4111111111111111",
    "jane.placeholder@example.test",
    "Jane Placeholder",
]


def analyze(request):
    redactions = []
    for segment in request["json"]["segments"]:
        for value, label in FINDINGS.items():
            start = segment["text"].find(value)
            if start >= 0:
                redactions.append(
                    {
                        "segment": segment["index"],
                        "start": start,
                        "end": start + len(value),
                        "label": label,
                    }
                )
    return {"decision": "redact" if redactions else "approve", "redactions": redactions}


@pytest.fixture
def detector(policy):
    peer = HttpPeer().start()
    policy.allow_host("127.0.0.1")
    yield peer
    peer.close()


@pytest.fixture
def masking(policy, detector):
    def add(**fields):
        return policy.add(
            "webhook",
            "request",
            options={
                "url": detector.url + "/analyze",
                "payload": "full",
                "ceiling": "redact",
            },
            **fields,
        )

    return add


def send_all(setup):
    """Send the prompt as chat and as /v1/messages; return (status, request id) of each."""
    results = []
    with httpx.Client(base_url=setup.gateway.url, timeout=30) as http:
        chat = http.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {setup.key}"},
            json={
                "model": setup.chat,
                "messages": [{"role": "user", "content": PROMPT}],
            },
        )
        messages = http.post(
            "/v1/messages",
            headers={"x-api-key": setup.key, "anthropic-version": "2023-06-01"},
            json={
                "model": setup.chat,
                "max_tokens": 100,
                "messages": [{"role": "user", "content": PROMPT}],
            },
        )
    for response in (chat, messages):
        results.append(
            (response.status_code, response.headers["x-request-id"], response.json())
        )
    return results


def detector_down(request):
    return web.Response(status=500, body=b"internal error", content_type="text/plain")


def test_detector_down_fails_closed_by_default(setup, masking, detector, fake_provider):
    masking()
    detector.respond = detector_down
    before = len(fake_provider.requests)

    results = send_all(setup)

    assert len(fake_provider.requests) == before
    assert [status for status, _, _ in results] == [503, 503]
    assert "policy" in results[0][2]["error"]["message"]
    assert results[1][2]["type"] == "error"
    flush_compliance(setup.gateway)
    for _, request_id, _ in results:
        event = AuditEvent.objects.get(request_id=request_id)
        assert event.details["hooks"]["request"][0]["outcome"] == "error_fail_closed"


def test_detector_down_fails_open_only_when_configured(
    setup, masking, detector, fake_provider
):
    masking(fail_open=True)
    detector.respond = detector_down

    results = send_all(setup)

    assert [status for status, _, _ in results] == [200, 200]
    flush_compliance(setup.gateway)
    for _, request_id, _ in results:
        assert (
            AuditEvent.objects.get(request_id=request_id).details["hooks"]["unscanned"]
            is True
        )


def test_detector_up_masks_before_the_provider(setup, masking, detector, fake_provider):
    masking()
    detector.respond = analyze
    before = len(fake_provider.requests)

    results = send_all(setup)

    assert [status for status, _, _ in results] == [200, 200]
    upstream = fake_provider.requests[before:]
    assert len(upstream) == 2
    for request in upstream:
        for value in MUST_NOT_REACH:
            assert value.encode() not in request.body
        messages = request.json["messages"]
        assert [message["role"] for message in messages] == ["user"]
        assert "[PERSON]" in str(messages[0]["content"])


def test_detector_up_masks_for_sdk_clients_on_translated_routes(
    setup, masking, detector, fake_provider
):
    masking()
    detector.respond = analyze
    oai = openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )
    claude = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )

    oai.chat.completions.create(
        model=setup.claude, messages=[{"role": "user", "content": PROMPT}]
    )
    to_anthropic = fake_provider.requests[-1].body
    claude.messages.create(
        model=setup.claude,
        max_tokens=100,
        messages=[{"role": "user", "content": PROMPT}],
    )
    same_format = fake_provider.requests[-1].body

    for value in MUST_NOT_REACH:
        assert value.encode() not in to_anthropic
        assert value.encode() not in same_format
