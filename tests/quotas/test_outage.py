"""While Redis is down each organization fails open or closed; counting resumes after.

A private redis-server on loopback plays the outage, so the shared Redis stays up.
"""

import shutil
import subprocess
import threading
import time

import pytest
import redis

from apps.audit.models import AuditEvent
from nexus.engine.quotas.redis_backend import RedisBackend
from tests.quotas.conftest import counter_value, quota_stage
from tests.quotas.factories import make_quota, make_settings
from tests.support.factories import make_tenant
from tests.support.process import free_port
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.shared_servers,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs redis-server"
    ),
]


class PrivateRedis:
    """A redis-server without persistence that a test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outage_stage(gateway, private_redis):
    """The session gateway's quota stage, counting in the private Redis."""
    stage = quota_stage(gateway)
    original = stage.backend

    async def swap() -> RedisBackend:
        backend = RedisBackend(private_redis.url, timeout=0.2, retry_seconds=0.1)
        backend.on_recovered = stage._recovered
        stage.backend = backend
        stage.known.clear()
        return backend

    yield gateway.run(swap())

    async def restore() -> None:
        await stage.backend.close()
        stage.backend = original
        stage.known.clear()

    gateway.run(restore())


def outage_of(setup, response) -> str:
    row = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    return row.details["quotas"].get("outage", "")


def wait_until_counted(setup, limit: float = 10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        response = setup.chat(max_tokens=3)
        setup.gateway.flush_audit()
        if response.status_code == 200 and outage_of(setup, response) == "":
            return response
        time.sleep(0.1)
    raise AssertionError(f"requests were not counted again within {limit} s")


def test_fail_open_admits_uncounted_and_recovers(
    quota_setup, outage_stage, private_redis
):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    before = quota_setup.chat(max_tokens=3)

    private_redis.stop()
    started = time.monotonic()
    during = [quota_setup.chat(max_tokens=3) for _ in range(5)]
    elapsed = time.monotonic() - started
    quota_setup.gateway.flush_audit()
    outages = [outage_of(quota_setup, response) for response in during]
    private_redis.start()
    wait_until_counted(quota_setup)

    stage = quota_stage(quota_setup.gateway)
    audited = sum(r.input_tokens + r.output_tokens for r in quota_setup.audit_rows())
    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    assert before.status_code == 200
    assert [response.status_code for response in during] == [200] * 5
    assert outages == ["fail_open"] * 5
    assert elapsed < 3.0
    assert stage.outages.totals["fail_open"] >= 5
    assert charged == audited


def test_fail_closed_rejects_with_503_and_recovers(
    quota_setup, outage_stage, private_redis
):
    make_settings(quota_setup.org, fail_mode="closed")
    make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()

    private_redis.stop()
    during = [quota_setup.chat(max_tokens=3) for _ in range(3)]
    private_redis.start()
    after = wait_until_counted(quota_setup)

    assert [response.status_code for response in during] == [503] * 3
    error = during[-1].json()["error"]
    assert error["code"] == "quota_store_unavailable"
    assert during[-1].headers["retry-after"] == "1"
    assert after.status_code == 200
    assert quota_setup.fake.requests and len(quota_setup.fake.requests) >= 1


def test_fail_mode_is_per_organization(
    quota_setup, outage_stage, private_redis, db_rows
):
    closed = make_tenant()
    make_settings(closed.org, fail_mode="closed")
    make_quota(closed.org, unit="tokens", hard_limit=10_000)
    make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()

    private_redis.stop()
    open_status = quota_setup.chat(max_tokens=3).status_code
    closed_status = quota_setup.chat(max_tokens=3, key=closed.key).status_code
    private_redis.start()

    assert open_status == 200
    assert closed_status == 503


def test_outage_is_logged_once_per_period(
    quota_setup, outage_stage, private_redis, caplog
):
    make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    quota_setup.chat(max_tokens=3)

    private_redis.stop()
    with caplog.at_level("WARNING"):
        for _ in range(10):
            quota_setup.chat(max_tokens=3)
    private_redis.start()
    wait_until_counted(quota_setup)

    down = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    summaries = [
        r for r in caplog.records if "requests since last report" in r.getMessage()
    ]
    assert len(down) == 1
    assert len(summaries) <= 1


def test_outage_settlements_replay_onto_kept_counters(
    quota_setup, outage_stage, private_redis
):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    quota_setup.fake.enqueue("/chat/completions", {"delay": 1.0})
    client = redis.Redis.from_url(private_redis.url)

    def pause_once_reserved() -> None:
        # The reservation is made before the upstream call. Redis is paused while the
        # provider delays its response for a second, so the settlement finds it paused.
        wait_for(lambda: quota_setup.fake.requests, interval=0.01)
        client.execute_command("CLIENT", "PAUSE", "1500", "ALL")

    pauser = threading.Thread(target=pause_once_reserved)
    pauser.start()
    slow = quota_setup.chat(max_tokens=3)
    pauser.join()
    time.sleep(2.0)
    wait_until_counted(quota_setup)

    audited = sum(r.input_tokens + r.output_tokens for r in quota_setup.audit_rows())
    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    slow_row = AuditEvent.objects.get(request_id=slow.headers["x-request-id"])
    assert slow.status_code == 200
    assert slow_row.details["quotas"]["settlement"] == "deferred"
    assert charged == audited
