import os

import pytest

from nexus.engine.hooks.base import Decision, HookContext, HookServices, Segment
from nexus.engine.hooks.network import (
    HostListHook,
    IpListHook,
    RateLimitHook,
    ResidencyHook,
    SizeHook,
)
from nexus.engine.hooks.ratelimit import MemoryRateCounter, RedisRateCounter

TEXT = [Segment("message", "hello")]


def context(**fields):
    return HookContext("request", **fields)


@pytest.mark.parametrize(
    ("client_ip", "decision"),
    [
        ("10.1.2.3", Decision.APPROVE),
        ("10.9.9.9", Decision.BLOCK),
        ("192.168.1.1", Decision.BLOCK),
        ("::ffff:10.1.2.3", Decision.APPROVE),
        (None, Decision.BLOCK),
    ],
)
def test_ip_allowlist_and_blocklist(client_ip, decision):
    hook = IpListHook(
        {"allow": ["10.0.0.0/8"], "block": ["10.9.0.0/16"]}, HookServices()
    )

    verdict = hook.check(context(client_ip=client_ip), TEXT)

    assert verdict.decision is decision
    if decision is Decision.BLOCK:
        assert verdict.status == 403


def test_host_list_on_connection_stage():
    hook = HostListHook(
        {
            "allow": ["api.openai.com", "*.anthropic.com"],
            "block": ["evil.anthropic.com"],
        },
        HookServices(),
    )

    assert (
        hook.check(HookContext("connection", host="api.openai.com"), []).decision
        is Decision.APPROVE
    )
    assert (
        hook.check(HookContext("connection", host="api.anthropic.com."), []).decision
        is Decision.APPROVE
    )
    assert (
        hook.check(HookContext("connection", host="evil.anthropic.com"), []).decision
        is Decision.BLOCK
    )
    assert (
        hook.check(HookContext("connection", host="example.test"), []).decision
        is Decision.BLOCK
    )


async def test_rate_limit_per_key_blocks_with_retry_after():
    clock = [1000.0]
    hook = RateLimitHook(
        {"per_key": 3, "window_seconds": 10},
        HookServices(counter=MemoryRateCounter(lambda: clock[0])),
    )

    verdicts = [await hook.check_async(context(key_id=7), TEXT) for _ in range(4)]
    other_key = await hook.check_async(context(key_id=8), TEXT)

    assert [v.decision for v in verdicts] == [Decision.APPROVE] * 3 + [Decision.BLOCK]
    assert verdicts[-1].status == 429
    assert 0 < verdicts[-1].retry_after <= 10
    assert other_key.decision is Decision.APPROVE


async def test_rate_limit_window_slides():
    clock = [1000.0]
    hook = RateLimitHook(
        {"per_ip": 2, "window_seconds": 10},
        HookServices(counter=MemoryRateCounter(lambda: clock[0])),
    )
    for _ in range(2):
        await hook.check_async(context(client_ip="1.2.3.4"), TEXT)

    clock[0] += 25

    assert (
        await hook.check_async(context(client_ip="1.2.3.4"), TEXT)
    ).decision is Decision.APPROVE


@pytest.mark.shared_servers
async def test_rate_limit_shared_through_redis():
    url = os.environ["REDIS_URL"]
    first, second = (
        RedisRateCounter(url, prefix="test:hooks:rate:"),
        RedisRateCounter(url, prefix="test:hooks:rate:"),
    )
    key = f"key:{os.getpid()}:{id(first)}"
    try:
        results = [
            await counter.hit(key, 3, 30) for counter in (first, second, first, second)
        ]
    finally:
        await first.close()
        await second.close()

    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3] > 0


def test_size_limits():
    hook = SizeHook(
        {"max_body_bytes": 100, "max_text_chars": 10, "max_messages": 2}, HookServices()
    )

    assert (
        hook.check(context(body_bytes=50, message_count=1), TEXT).decision
        is Decision.APPROVE
    )
    body = hook.check(context(body_bytes=101, message_count=1), TEXT)
    text = hook.check(
        context(body_bytes=50, message_count=1), [Segment("message", "x" * 11)]
    )
    messages = hook.check(context(body_bytes=50, message_count=3), TEXT)

    assert (body.status, body.rule_ids) == (413, ("size.body",))
    assert "limit is 100 bytes" in body.reason
    assert text.rule_ids == ("size.text",)
    assert messages.rule_ids == ("size.messages",)


@pytest.mark.parametrize(
    ("tags", "region", "decision"),
    [
        ({"classification:restricted"}, "eu-west-1", Decision.APPROVE),
        ({"classification:restricted"}, "us-east-1", Decision.BLOCK),
        ({"classification:confidential"}, "eu-central-1", Decision.APPROVE),
        ({"classification:confidential"}, "us-east-1", Decision.BLOCK),
        ({"classification:public"}, "us-east-1", Decision.APPROVE),
        (set(), "ap-south-1", Decision.APPROVE),
        ({"classification:restricted"}, "", Decision.BLOCK),
    ],
)
def test_residency_by_classification(tags, region, decision):
    hook = ResidencyHook(
        {"allowed_regions": {"confidential": ["eu-*"], "restricted": ["eu-west-1"]}},
        HookServices(),
    )

    verdict = hook.check(context(tags=set(tags), region=region), TEXT)

    assert verdict.decision is decision
