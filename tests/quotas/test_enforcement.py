"""Hard limits reject with 429 in the caller's format; headers name the axis and quota."""

import anthropic
import httpx
import pytest

from tests.quotas.conftest import counter_value
from tests.quotas.factories import make_quota


def test_request_over_hard_limit_gets_429_naming_quota(quota_setup):
    quota = make_quota(quota_setup.org, name="Key tokens", unit="tokens", hard_limit=5)
    quota_setup.refresh()

    response = quota_setup.chat(max_tokens=3)

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["type"] == "rate_limit_error"
    assert 'Quota "Key tokens"' in error["message"]
    assert "key axis" in error["message"]
    assert "5 tokens" in error["message"]
    assert response.headers["x-nexus-quota"] == "Key tokens"
    assert response.headers["x-nexus-quota-id"] == quota.to_rule().uid
    assert response.headers["x-nexus-quota-axis"] == "key"
    assert response.headers["x-ratelimit-limit-key-tokens"] == "5"
    assert response.headers["x-ratelimit-remaining-key-tokens"] == "5"


def test_rejected_request_reaches_no_provider(quota_setup):
    make_quota(quota_setup.org, unit="tokens", hard_limit=5)
    quota_setup.refresh()

    quota_setup.chat(max_tokens=3)

    assert quota_setup.fake.requests == []


def test_admitted_request_carries_remaining_budget(quota_setup):
    make_quota(quota_setup.org, unit="usd", hard_limit="1.00")
    quota_setup.refresh()

    response = quota_setup.chat(max_tokens=3)

    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit-key-usd"] == "1.00"
    remaining = float(response.headers["x-ratelimit-remaining-key-usd"])
    assert 0.99 < remaining < 1.0


def test_usage_counts_until_hard_limit_then_rejects(quota_setup):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=100)
    quota_setup.refresh()
    statuses = []

    for _ in range(25):
        statuses.append(quota_setup.chat(max_tokens=3).status_code)
        # Settlement runs after the response; wait for it so each request sees the
        # previous one settled rather than still reserved.
        quota_setup.gateway.flush_audit()

    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    audited = sum(r.input_tokens + r.output_tokens for r in quota_setup.audit_rows())
    assert 200 in statuses
    assert statuses[-1] == 429
    assert statuses == sorted(statuses)
    assert charged == audited
    assert charged <= 100


def test_calendar_quota_sets_retry_after_to_period_end(quota_setup):
    make_quota(quota_setup.org, unit="tokens", window="calendar_day", hard_limit=15)
    quota_setup.refresh()

    first = quota_setup.chat(max_tokens=3)
    response = quota_setup.chat(max_tokens=3)

    assert first.status_code == 200
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 86400 + 3600


def test_sliding_quota_retries_when_usage_drains(quota_setup):
    make_quota(quota_setup.org, unit="requests", window="minute", hard_limit=2)
    quota_setup.refresh()

    statuses = [quota_setup.chat(max_tokens=3).status_code for _ in range(3)]
    response = quota_setup.chat(max_tokens=3)

    assert statuses == [200, 200, 429]
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-limit-key-requests"] == "2"


def test_oversized_request_gets_no_retry_after(quota_setup):
    make_quota(quota_setup.org, unit="tokens", window="minute", hard_limit=50)
    quota_setup.refresh()

    response = quota_setup.chat(max_tokens=500)

    assert response.status_code == 429
    assert "lower max_tokens" in response.json()["error"]["message"]
    assert "retry-after" not in response.headers


def test_model_axis_quota_counts_each_model_apart(quota_setup, db_rows):
    from tests.support.factories import make_model

    other = make_model(quota_setup.connection, "gpt-4o-mini")
    make_quota(
        quota_setup.org,
        axis="key+model",
        unit="requests",
        window="minute",
        hard_limit=1,
    )
    quota_setup.refresh()

    first = quota_setup.chat(max_tokens=3)
    second = quota_setup.chat(max_tokens=3)
    other_model = httpx.post(
        f"{quota_setup.gateway.url}/v1/chat/completions",
        json={"model": other.name, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {quota_setup.key}"},
        timeout=30,
    )

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["x-nexus-quota-axis"] == "key+model"
    assert "x-ratelimit-limit-key-model-requests" in second.headers
    assert other_model.status_code == 200


def test_quota_of_other_key_does_not_apply(quota_setup, db_rows):
    from tests.support.factories import make_tenant

    other = make_tenant(org=quota_setup.org)
    make_quota(quota_setup.org, key=other.key_row, unit="tokens", hard_limit=5)
    quota_setup.refresh()

    assert quota_setup.chat(max_tokens=3).status_code == 200
    assert quota_setup.chat(key=other.key, max_tokens=3).status_code == 429


def test_anthropic_caller_gets_429_in_anthropic_format(quota_setup, fake_provider):
    make_quota(
        quota_setup.org, name="Messages budget", unit="usd", hard_limit="0.000001"
    )
    quota_setup.refresh()
    client = anthropic.Anthropic(
        base_url=quota_setup.gateway.url, api_key=quota_setup.key, max_retries=0
    )

    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=quota_setup.model.name,
            max_tokens=16,
            messages=[{"role": "user", "content": "hello"}],
        )

    body = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert 'Quota "Messages budget"' in body["error"]["message"]
    assert caught.value.response.headers["x-nexus-quota-axis"] == "key"
