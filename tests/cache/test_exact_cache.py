"""Exact cache through the gateway: hits, headers, audit, TTL, bypass and refresh."""

import time
from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance.models import SCOPE_ORG, PassthroughFlag
from tests.cache.conftest import chat_body
from tests.support.factories import make_tenant


@pytest.fixture
def client(cache):
    return openai.OpenAI(
        base_url=cache.gateway.openai_base, api_key=cache.key_a.key, max_retries=0
    )


def test_second_identical_request_is_a_hit(cache, client):
    cache.policy()
    body = chat_body("what is two plus two", cache.chat, temperature=0)

    first = cache.post(body)
    second = cache.post(body)

    assert first.status_code == 200
    assert second.status_code == 200
    assert first.headers["x-nexus-cache"] == "miss"
    assert second.headers["x-nexus-cache"] == "hit"
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["choices"] == first.json()["choices"]
    assert second.headers["x-nexus-cache-entry"] == first.headers["x-nexus-cache-entry"]
    assert cache.upstream_calls() == 1


def test_hit_audited_with_zero_cost(cache):
    cache.policy()
    body = chat_body("count the saved tokens please", cache.chat, temperature=0)
    miss = cache.post(body)
    hit = cache.post(body)
    cache.gateway.flush_audit()

    miss_event = AuditEvent.objects.get(request_id=miss.headers["x-request-id"])
    hit_event = AuditEvent.objects.get(request_id=hit.headers["x-request-id"])

    assert miss_event.details["cache"]["outcome"] == "miss"
    assert miss_event.details["cache"]["stored"] is True
    assert miss_event.cost_nano_usd > 0
    assert hit_event.details["cache"]["outcome"] == "hit"
    assert hit_event.cost_nano_usd == 0
    assert hit_event.input_tokens == 0
    assert hit_event.output_tokens == 0
    saved = hit_event.details["cache"]["saved"]
    assert saved["input_tokens"] == miss_event.input_tokens
    assert saved["output_tokens"] == miss_event.output_tokens
    assert saved["cost_nano_usd"] == miss_event.cost_nano_usd


def test_no_policy_means_no_caching(cache):
    body = chat_body("nothing is cached here", cache.chat, temperature=0)

    first = cache.post(body)
    second = cache.post(body)

    assert "x-nexus-cache" not in first.headers
    assert "x-nexus-cache" not in second.headers
    assert cache.upstream_calls() == 2


def test_disabled_policy_turns_cache_off_for_one_key(cache):
    cache.policy()
    cache.policy(key=cache.key_a.key_row, enabled=False, coalesce=False)
    body = chat_body("the key opted out", cache.chat, temperature=0)

    cache.post(body)
    cache.post(body)
    cache.post(body, key=cache.key_b.key)
    cache.post(body, key=cache.key_b.key)

    assert cache.upstream_calls() == 3


def test_bypass_header_skips_lookup_and_store(cache):
    cache.policy()
    body = chat_body("bypass me", cache.chat, temperature=0)
    cache.post(body)

    bypassed = cache.post(body, headers={"x-nexus-cache": "bypass"})
    fresh_body = chat_body("bypass me first", cache.chat, temperature=0)
    cache.post(fresh_body, headers={"x-nexus-cache": "bypass"})
    after = cache.post(fresh_body)

    assert bypassed.headers["x-nexus-cache"] == "bypass"
    assert after.headers["x-nexus-cache"] == "miss"
    assert cache.upstream_calls() == 4


def test_refresh_header_replaces_the_stored_answer(cache):
    cache.policy()
    body = chat_body("refresh me", cache.chat, temperature=0)
    first = cache.post(body)

    refreshed = cache.post(body, headers={"x-nexus-cache": "refresh"})
    after = cache.post(body)

    assert refreshed.headers["x-nexus-cache"] == "refresh"
    assert refreshed.json()["id"] != first.json()["id"]
    assert after.headers["x-nexus-cache"] == "hit"
    assert after.json()["id"] == refreshed.json()["id"]
    assert cache.upstream_calls() == 2


def test_headers_ignored_when_policy_disallows_them(cache):
    cache.policy(honor_headers=False)
    body = chat_body("headers are not honoured", cache.chat, temperature=0)
    cache.post(body)

    response = cache.post(body, headers={"x-nexus-cache": "bypass"})

    assert response.headers["x-nexus-cache"] == "hit"


def test_unknown_header_value_is_rejected(cache):
    cache.policy()

    response = cache.post(
        chat_body("bad header", cache.chat), headers={"x-nexus-cache": "skip"}
    )

    assert response.status_code == 400
    assert "bypass or refresh" in response.json()["error"]["message"]


def test_entry_expires_after_ttl(cache):
    cache.policy(ttl_seconds=1)
    body = chat_body("short lived answer", cache.chat, temperature=0)
    cache.post(body)
    assert cache.post(body).headers["x-nexus-cache"] == "hit"

    time.sleep(1.3)
    expired = cache.post(body)

    assert expired.headers["x-nexus-cache"] == "miss"
    assert cache.upstream_calls() == 2


def test_emergency_passthrough_skips_the_cache(cache):
    cache.policy()
    body = chat_body("passthrough please", cache.chat, temperature=0)
    cache.post(body)
    PassthroughFlag.objects.create(
        scope=SCOPE_ORG,
        organization=cache.org,
        bypass_cache=True,
        reason="cache serves stale answers",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    cache.gateway.refresh()

    response = cache.post(body)
    cache.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert "x-nexus-cache" not in response.headers
    assert event.details["cache"] == {"outcome": "passthrough"}
    assert cache.upstream_calls() == 2


def test_other_org_never_gets_the_cached_answer(cache, db_rows):
    outsider = make_tenant()
    cache.policy()
    cache.policy(organization=outsider.org, share="org")
    body = chat_body("tenant isolation of exact entries", cache.chat, temperature=0)
    cache.post(body)

    other_org = cache.post(body, key=outsider.key)
    other_project = cache.post(body, key=cache.key_c.key)
    same_project = cache.post(body, key=cache.key_b.key)

    assert other_org.headers["x-nexus-cache"] == "miss"
    assert other_project.headers["x-nexus-cache"] == "miss"
    assert same_project.headers["x-nexus-cache"] == "hit"
    assert cache.upstream_calls() == 3


def test_key_scope_keeps_keys_of_one_project_apart(cache):
    cache.policy(share="key")
    body = chat_body("each key alone", cache.chat, temperature=0)
    cache.post(body)

    assert cache.post(body, key=cache.key_b.key).headers["x-nexus-cache"] == "miss"
    assert cache.post(body).headers["x-nexus-cache"] == "hit"
