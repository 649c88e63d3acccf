import ipaddress

import pytest
from aiohttp import web

from nexus.engine.hooks.base import (
    Decision,
    HookContext,
    HookError,
    HookServices,
    Segment,
)
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline
from nexus.engine.hooks.webhook import (
    ForbiddenAddressError,
    WebhookClient,
    WebhookHook,
    check_host,
    forbidden_reason,
)
from tests.hooks.servers import HttpPeer

SEGMENTS = [Segment("message", "Patient Jane Placeholder, SSN 078-05-1120.", "user")]


@pytest.fixture
def service():
    peer = HttpPeer().start()
    yield peer
    peer.close()


def webhook(url, allowed=("127.0.0.1",), **options):
    client = WebhookClient(lambda: frozenset(allowed))
    return WebhookHook({"url": url, **options}, HookServices(http=client)), client


def context():
    return HookContext("request", request_id="req_1", org_id=3, original=SEGMENTS)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("192.168.1.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("0.0.0.0", "a private address"),
        ("100.64.0.1", "a non-public address"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_forbidden_addresses(address, reason):
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


def test_every_resolved_address_is_checked():
    with pytest.raises(ForbiddenAddressError, match="loopback"):
        check_host("mixed.example.test", ["8.8.8.8", "127.0.0.1"], frozenset())

    check_host(
        "mixed.example.test",
        ["8.8.8.8", "127.0.0.1"],
        frozenset({"mixed.example.test"}),
    )


async def test_loopback_service_is_refused_unless_allowed(service):
    hook, client = webhook(service.url + "/decide", allowed=())
    try:
        with pytest.raises(
            ForbiddenAddressError, match="an administrator must allow the host"
        ):
            await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()

    assert service.requests == []


async def test_host_name_resolving_to_loopback_is_refused(service):
    hook, client = webhook(
        f"http://localhost:{service.port}/decide", allowed=("127.0.0.1",)
    )
    try:
        with pytest.raises(
            ForbiddenAddressError, match="localhost resolves to a loopback address"
        ):
            await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()

    assert service.requests == []


async def test_redirect_is_not_followed(service):
    service.respond = lambda request: web.Response(
        status=302, headers={"location": "http://127.0.0.1:1/elsewhere"}
    )
    hook, client = webhook(service.url + "/decide")
    try:
        with pytest.raises(HookError, match="redirect"):
            await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()

    assert len(service.requests) == 1


async def test_redactions_from_the_service_are_applied(service):
    text = SEGMENTS[0].text
    start = text.index("Jane")
    service.respond = lambda request: {
        "decision": "redact",
        "reason": "person found",
        "redactions": [
            {
                "segment": 0,
                "start": start,
                "end": start + len("Jane Placeholder"),
                "label": "PERSON",
            }
        ],
    }
    hook, client = webhook(service.url + "/decide", payload="full")
    try:
        verdict = await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()

    assert verdict.decision is Decision.REDACT
    assert verdict.redactions[0].replacement == "[PERSON]"
    sent = service.requests[0]["json"]
    assert sent["segments"][0]["text"] == text
    assert sent["metadata"]["organization_id"] == 3


async def test_metadata_payload_sends_no_text(service):
    hook, client = webhook(service.url + "/decide", payload="metadata")
    try:
        await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()

    assert "segments" not in service.requests[0]["json"]
    assert b"Jane" not in service.requests[0]["body"]


@pytest.mark.parametrize(
    ("ceiling", "expected"),
    [
        ("block", Decision.BLOCK),
        ("redact", Decision.REDACT),
        ("approve", Decision.APPROVE),
    ],
)
async def test_ceiling_caps_the_answer(service, ceiling, expected):
    service.respond = lambda request: {"decision": "block", "reason": "bad"}
    hook, client = webhook(service.url + "/decide", ceiling=ceiling)
    try:
        verdict = await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()

    assert verdict.decision is expected


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b"internal error"), (200, b"not json"), (200, b'{"decision": "maybe"}')],
)
async def test_bad_answers_are_errors(service, status, body):
    service.respond = lambda request: web.Response(
        status=status, body=body, content_type="text/plain"
    )
    hook, client = webhook(service.url + "/decide")
    try:
        with pytest.raises(HookError):
            await hook.check_async(context(), SEGMENTS)
    finally:
        await client.close()


async def test_slow_service_times_out_in_the_pipeline(service):
    service.delay = 2.0
    hook, client = webhook(service.url + "/decide")
    spec = HookSpec(1, "detector", "webhook", "request", timeout_ms=100)
    try:
        outcome = await Pipeline([BoundHook(spec, hook)]).run(
            "request", context(), SEGMENTS
        )
    finally:
        await client.close()

    assert outcome.blocked
    assert outcome.records[0].outcome == "timeout_fail_closed"
