"""Classification tags, data residency, rate limits and IP lists through the gateway."""

import openai
import pytest

from apps.audit.models import AuditEvent
from nexus.engine.hooks.base import HookContext, HookServices
from nexus.engine.hooks.network import HostListHook
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


@pytest.fixture
def residency(policy):
    policy.add("pii", "request", priority=10)
    policy.add(
        "classification",
        "request",
        priority=20,
        options={"pii_levels": {"us_ssn": "restricted"}},
    )
    policy.add(
        "residency",
        "request",
        priority=30,
        options={"allowed_regions": {"restricted": ["eu-*"]}},
    )
    return policy


def test_classification_tags_reach_the_audit_event(oai, setup, residency):
    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": "ssn 078-05-1120"}]
    )

    setup.gateway.flush_audit()
    tags = AuditEvent.objects.get(request_id=response.headers["x-request-id"]).details[
        "tags"
    ]
    assert "classification:restricted" in tags
    assert "pii:us_ssn" in tags


def test_restricted_data_stays_in_allowed_regions(oai, setup, residency, fake_provider):
    oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "ssn 078-05-1120"}]
    )
    before = len(fake_provider.requests)

    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai.chat.completions.create(
            model=setup.claude,
            messages=[{"role": "user", "content": "ssn 078-05-1120"}],
        )

    assert caught.value.code == "data_residency"
    assert "us-east-1" in caught.value.message
    assert len(fake_provider.requests) == before


def test_public_data_may_go_anywhere(oai, setup, residency):
    completion = oai.chat.completions.create(
        model=setup.claude, messages=[{"role": "user", "content": "hello"}]
    )

    assert completion.choices[0].message.content == "Echo: hello"


def test_rate_limit_per_key_answers_429_with_retry_after(oai, setup, policy):
    policy.add("rate_limit", "request", options={"per_key": 2, "window_seconds": 60})
    for _ in range(2):
        oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}]
        )

    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_ip_allowlist_blocks_other_callers(oai, setup, policy):
    policy.add("ip_list", "request", options={"allow": ["10.0.0.0/8"]})

    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.code == "ip_not_allowed"


def test_ip_allowlist_lets_listed_callers_through(oai, setup, policy):
    policy.add("ip_list", "request", options={"allow": ["127.0.0.0/8", "::1/128"]})

    completion = oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content == "Echo: hi"


async def test_connection_stage_sees_only_the_host():
    hook = HostListHook({"allow": ["api.openai.com"]}, HookServices())
    pipeline = Pipeline(
        [BoundHook(HookSpec(1, "hosts", "host_list", "connection"), hook)]
    )

    allowed = await pipeline.run(
        "connection",
        HookContext("connection", host="api.openai.com", client_ip="10.0.0.1"),
        [],
    )
    blocked = await pipeline.run(
        "connection", HookContext("connection", host="llm.example.test"), []
    )

    assert allowed.decision.label == "approve"
    assert blocked.decision.label == "block"
    assert blocked.error.status == 403
