"""Reloading counters (restart, second replica, emptied store) neither doubles nor loses spend.

Each call reports 100,000 prompt tokens at 2.5 USD per million, so it costs exactly
0.25 USD; the key's hard limit is 1.00 USD over a sliding 30-day window.
"""

import httpx
import pytest
import redis
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.quotas.selectors import list_quota_usage
from tests.quotas.conftest import counter_key, counter_value, redis_counter_value
from tests.quotas.factories import make_quota
from tests.quotas.test_concurrency import wait_for_audit
from tests.support.factories import make_connection, make_model, make_tenant
from tests.support.gateway import GatewayServer
from tests.support.process import GatewayProcess

QUARTER_USD = 250_000_000
UPSTREAM = {
    "id": "chatcmpl-fake24",
    "object": "chat.completion",
    "created": 1767225600,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 100000, "completion_tokens": 0, "total_tokens": 100000},
}


class Budget:
    """A key allowed "gpt-test" only, with a 1.00 USD budget over 30 days."""

    def __init__(self, fake_provider) -> None:
        connection = make_connection("openai", fake_provider.openai_base)
        self.model = make_model(
            connection,
            "gpt-4o-mini",
            name=f"gpt-test-{connection.pk}",
            input_price="2.5",
            output_price="10",
        )
        self.tenant = make_tenant(allowed_models=[self.model.name])
        self.quota = make_quota(
            self.tenant.org,
            name="budget",
            unit="usd",
            window="day",
            window_size=30,
            hard_limit="1.00",
        )
        self.fake = fake_provider

    def call(self, url: str) -> httpx.Response:
        self.fake.enqueue("/chat/completions", {"json": UPSTREAM})
        return httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": self.model.name,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"authorization": f"Bearer {self.tenant.key}"},
            timeout=30,
        )

    def audited_spend(self) -> int:
        rows = AuditEvent.objects.filter(key_id=self.tenant.key_row.pk)
        return sum(row.cost_nano_usd for row in rows)

    def counter(self, server) -> int:
        return counter_value(server, self.quota, key=self.tenant.key_row.pk)


@pytest.fixture
def budget(fake_provider, gateway, db_rows) -> Budget:
    return Budget(fake_provider)


def start_server() -> GatewayServer:
    return GatewayServer().start()


def check_rejection(response: httpx.Response) -> None:
    message = response.json()["error"]["message"]
    assert response.status_code == 429
    assert 'Quota "budget"' in message
    assert "1.00 of 1.00 USD used" in message


def test_restart_neither_doubles_nor_loses_spend(budget):
    first = start_server()
    try:
        statuses = [budget.call(first.url).status_code for _ in range(3)]
        first.flush_audit()
        before_restart = budget.counter(first)
    finally:
        first.close()
    restarted = start_server()
    try:
        after_restart = budget.counter(restarted)
        fourth = budget.call(restarted.url)
        restarted.flush_audit()
        after_fourth = budget.counter(restarted)
        upstream_calls = len(budget.fake.requests)
        fifth = budget.call(restarted.url)
        restarted.flush_audit()
        after_fifth = budget.counter(restarted)
    finally:
        restarted.close()

    assert statuses == [200, 200, 200]
    assert before_restart == 3 * QUARTER_USD
    assert fourth.status_code == 200
    assert after_fourth == 4 * QUARTER_USD == budget.audited_spend()
    check_rejection(fifth)
    assert len(budget.fake.requests) == upstream_calls
    assert after_fifth == budget.audited_spend()
    assert after_restart in (0, 3 * QUARTER_USD)


@pytest.mark.shared_servers
def test_two_replicas_and_a_restart_share_one_spend(budget):
    second = GatewayProcess()
    first = GatewayProcess()
    try:
        statuses = [budget.call(first.url).status_code for _ in range(3)]
        wait_for_audit(budget.tenant.key_row.pk, 3)
        [usage_after_three] = list_quota_usage(budget.quota)
        first.stop()
        first = GatewayProcess()
        fourth = budget.call(first.url)
        upstream_calls = len(budget.fake.requests)
        fifth = budget.call(second.url)
        wait_for_audit(budget.tenant.key_row.pk, 5)
    finally:
        first.stop()
        second.stop()

    spend = redis_counter_value(budget.quota, key=budget.tenant.key_row.pk)
    assert statuses == [200, 200, 200]
    assert usage_after_three.used == 3 * QUARTER_USD
    assert fourth.status_code == 200
    check_rejection(fifth)
    assert len(budget.fake.requests) == upstream_calls
    assert spend == 4 * QUARTER_USD
    assert spend == budget.audited_spend()


@pytest.mark.shared_servers
def test_emptied_redis_is_seeded_from_audit_once(budget):
    first = start_server()
    try:
        for _ in range(2):
            budget.call(first.url)
        first.flush_audit()
    finally:
        first.close()
    key, _ = counter_key(budget.quota, key=budget.tenant.key_row.pk)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(key)
    client.close()
    spends = []

    for _ in range(2):
        server = start_server()
        try:
            budget.call(server.url)
            server.flush_audit()
            spends.append(budget.counter(server))
        finally:
            server.close()

    assert spends == [3 * QUARTER_USD, 4 * QUARTER_USD]
    assert spends[-1] == budget.audited_spend()
