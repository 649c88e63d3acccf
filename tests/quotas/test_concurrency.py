"""A burst of concurrent requests never spends past a hard limit, across processes too."""

import asyncio
import time

import httpx
import pytest

from apps.audit.models import AuditEvent
from tests.quotas.conftest import QuotaSetup, counter_value, redis_counter_value
from tests.quotas.factories import make_quota
from tests.support.process import GatewayProcess

CONCURRENT = 200
# Each request costs exactly 5 tokens x 20 USD per million = 0.0001 USD.
COST_NANO = 100_000
# The hard limit allows 20 such requests and half of a 21st.
HARD_LIMIT_USD = "0.00205"
HARD_LIMIT_NANO = 2_050_000


async def burst(urls: list[str], key: str, model: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(index: int) -> httpx.Response:
            return await client.post(
                f"{urls[index % len(urls)]}/v1/chat/completions",
                json={
                    "model": model,
                    "max_tokens": 3,
                    "messages": [{"role": "user", "content": "hello world"}],
                },
                headers={"authorization": f"Bearer {key}"},
            )

        return await asyncio.gather(*(one(index) for index in range(CONCURRENT)))


@pytest.fixture
def burst_setup(fake_provider, gateway, db_rows):
    setup = QuotaSetup(fake_provider, gateway, input_price="20", output_price="20")
    setup.quota = make_quota(setup.org, unit="usd", hard_limit=HARD_LIMIT_USD)
    for _ in range(CONCURRENT):
        fake_provider.enqueue("/chat/completions", {"delay": 0.05})
    yield setup
    setup.client.close()


def wait_for_audit(key_id: int, count: int, limit: float = 30.0) -> list[AuditEvent]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rows = list(AuditEvent.objects.filter(key_id=key_id))
        if len(rows) >= count:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{count} audit rows not stored within {limit} s")


def estimation_error(rows: list[AuditEvent], quota_id: int) -> int:
    """Return how far the admitted requests' actual cost exceeded their reservations."""
    return sum(
        max(0, row.cost_nano_usd - row.details["quotas"]["reserved"][str(quota_id)])
        for row in rows
        if row.details.get("quotas", {}).get("admitted")
    )


def check_burst(responses, rows, setup) -> int:
    admitted = [r for r in responses if r.status_code == 200]
    rejected = [r for r in responses if r.status_code != 200]
    spend = sum(row.cost_nano_usd for row in rows)
    assert 1 <= len(admitted) <= 20
    assert all(r.status_code == 429 for r in rejected)
    assert all(r.headers["x-nexus-quota-axis"] == "key" for r in rejected)
    assert all(r.json()["error"]["code"] == "quota_exceeded" for r in rejected)
    assert all("key axis" in r.json()["error"]["message"] for r in rejected)
    assert all("x-ratelimit-remaining-key-usd" in r.headers for r in rejected)
    assert spend == len(admitted) * COST_NANO
    assert spend <= HARD_LIMIT_NANO + estimation_error(rows, setup.quota.pk)
    return spend


def test_burst_on_one_gateway_stays_within_limit(burst_setup):
    setup = burst_setup
    setup.refresh()

    responses = asyncio.run(burst([setup.gateway.url], setup.key, setup.model.name))

    rows = setup.audit_rows()
    spend = check_burst(responses, rows, setup)
    assert len(rows) == CONCURRENT
    assert counter_value(setup.gateway, setup.quota, key=setup.key_row.pk) == spend


@pytest.mark.shared_servers
def test_burst_on_two_processes_stays_within_limit(burst_setup):
    setup = burst_setup
    first, second = GatewayProcess(), GatewayProcess()
    try:
        responses = asyncio.run(
            burst([first.url, second.url], setup.key, setup.model.name)
        )
        rows = wait_for_audit(setup.key_row.pk, CONCURRENT)
    finally:
        first.stop()
        second.stop()

    spend = check_burst(responses, rows, setup)
    served_by = {r.headers.get("x-request-id")[:4] for r in responses}
    assert served_by == {"req_"}
    assert redis_counter_value(setup.quota, key=setup.key_row.pk) == spend
