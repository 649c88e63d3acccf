"""The circuit breaker and health window, in memory and shared through Redis.

Both backends run the same scenarios with a fake clock. The Redis one syncs after
every step, so its state is the one the Lua script computed.
"""

import asyncio
import os
import uuid

import pytest
import redis

from nexus.engine.routing.health import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    MemoryHealth,
)
from nexus.engine.routing.outcomes import Outcome
from nexus.engine.routing.redis_health import RedisHealth

CONFIG = BreakerConfig(
    window_seconds=60,
    bucket_seconds=10,
    min_requests=4,
    error_rate=0.5,
    consecutive_failures=3,
    cooldown_seconds=10,
    max_cooldown_seconds=25,
    probe_timeout_seconds=5,
)
TARGET = "7:gpt"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """One backend, its clock and an event loop for the Redis syncs."""

    def __init__(self, backend, clock: Clock, loop) -> None:
        self.backend = backend
        self.clock = clock
        self.loop = loop

    def record(self, ok: bool, status: int = 200, latency_ms: float = 100.0, **extra):
        self.backend.record(
            TARGET, Outcome(ok=ok, latency_ms=latency_ms, status=status, **extra)
        )
        self.settle()

    def fail(self, times: int = 1, status: int = 503) -> None:
        for _ in range(times):
            self.record(False, status)

    def settle(self) -> None:
        self.loop.run_until_complete(self.backend.sync([TARGET]))

    def state(self) -> str:
        return self.backend.get(TARGET).state

    def admit_probe(self) -> bool:
        """Admit the probe request; with Redis, a sync claims it first."""
        if isinstance(self.backend, RedisHealth):
            assert self.backend.admit(TARGET) is False
            self.settle()
        return self.backend.admit(TARGET)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.shared_servers),
    ]
)
def harness(request):
    clock = Clock()
    loop = asyncio.new_event_loop()
    if request.param == "memory":
        backend = MemoryHealth(CONFIG, clock)
    else:
        prefix = f"test:routing:{uuid.uuid4().hex}:"
        backend = RedisHealth(os.environ["REDIS_URL"], CONFIG, clock, key_prefix=prefix)
    yield Harness(backend, clock, loop)
    loop.run_until_complete(backend.close())
    loop.close()


def test_consecutive_failures_open_the_circuit(harness):
    harness.fail(2)
    assert harness.state() == CLOSED

    harness.fail()

    assert harness.state() == OPEN
    assert harness.backend.get(TARGET).open_until == harness.clock.now + 10
    assert harness.backend.admit(TARGET) is False


def test_error_rate_opens_the_circuit(harness):
    for ok in (True, True, False, True, False):
        harness.record(ok, 200 if ok else 500)
    assert harness.state() == CLOSED

    harness.fail()

    health = harness.backend.get(TARGET)
    assert health.state == OPEN
    assert health.requests == 6
    assert health.failures == 3


def test_client_errors_do_not_count_as_failures(harness):
    for _ in range(5):
        harness.record(False, 400)

    health = harness.backend.get(TARGET)
    assert health.state == CLOSED
    assert health.failures == 0


def test_half_open_admits_one_probe(harness):
    harness.fail(3)

    harness.clock.now += 10
    harness.settle()

    assert harness.state() == HALF_OPEN
    assert harness.admit_probe() is True
    assert harness.backend.admit(TARGET) is False


def test_successful_probe_closes_the_circuit(harness):
    harness.fail(3)
    harness.clock.now += 10
    harness.settle()
    assert harness.admit_probe()

    harness.record(True)

    health = harness.backend.get(TARGET)
    assert health.state == CLOSED
    assert health.failures == 0
    assert harness.backend.admit(TARGET) is True


def test_failed_probe_reopens_with_doubled_cooldown(harness):
    harness.fail(3)
    harness.clock.now += 10
    harness.settle()
    assert harness.admit_probe()

    harness.fail()

    health = harness.backend.get(TARGET)
    assert health.state == OPEN
    assert health.cooldown_seconds == 20
    harness.clock.now += 20
    harness.settle()
    assert harness.admit_probe()
    harness.fail()
    assert harness.backend.get(TARGET).cooldown_seconds == 25


def test_stalled_probe_slot_expires(harness):
    harness.fail(3)
    harness.clock.now += 10
    harness.settle()
    assert harness.admit_probe()

    harness.clock.now += 5

    assert harness.admit_probe() is True


def test_window_forgets_old_failures(harness):
    harness.fail(2)

    harness.clock.now += 120
    harness.settle()

    health = harness.backend.get(TARGET)
    assert health.requests == 0
    assert health.consecutive_failures == 2


def test_latency_is_a_moving_average(harness):
    harness.record(True, latency_ms=100)
    harness.record(True, latency_ms=200)

    # alpha 0.2: 100 + 0.2 * (200 - 100)
    assert harness.backend.get(TARGET).latency_ms == pytest.approx(120)


def test_retry_after_and_headroom_are_kept(harness):
    harness.record(False, 429, retry_after=20)
    harness.record(True, headroom=0.25)

    health = harness.backend.get(TARGET)
    assert health.retry_after_until == pytest.approx(harness.clock.now + 20)
    assert health.headroom == 0.25


def test_reset_closes_the_circuit(harness):
    harness.fail(3)

    harness.backend.reset(TARGET)

    assert harness.state() == CLOSED


@pytest.mark.shared_servers
def test_two_processes_share_one_breaker():
    clock = Clock()
    loop = asyncio.new_event_loop()
    prefix = f"test:routing:{uuid.uuid4().hex}:"
    first = RedisHealth(os.environ["REDIS_URL"], CONFIG, clock, key_prefix=prefix)
    second = RedisHealth(os.environ["REDIS_URL"], CONFIG, clock, key_prefix=prefix)
    try:
        for backend in (first, second, first):
            backend.record(TARGET, Outcome(ok=False, latency_ms=5, status=502))
            loop.run_until_complete(backend.sync())
        assert first.get(TARGET).state == OPEN

        loop.run_until_complete(second.sync([TARGET]))

        assert second.get(TARGET).state == OPEN
        assert second.admit(TARGET) is False
        clock.now += 10
        loop.run_until_complete(second.sync([TARGET]))
        assert second.admit(TARGET) is False
        loop.run_until_complete(second.sync([TARGET]))
        assert second.admit(TARGET) is True
        second.record(TARGET, Outcome(ok=True, latency_ms=5, status=200))
        loop.run_until_complete(second.sync())
        loop.run_until_complete(first.sync([TARGET]))
        assert first.get(TARGET).state == CLOSED
    finally:
        loop.run_until_complete(first.close())
        loop.run_until_complete(second.close())
        loop.close()


@pytest.mark.shared_servers
def test_outcomes_survive_a_failed_sync():
    clock = Clock()
    loop = asyncio.new_event_loop()
    backend = RedisHealth("redis://127.0.0.1:1/0", CONFIG, clock)
    backend.record(TARGET, Outcome(ok=False, latency_ms=5, status=502))

    with pytest.raises(redis.exceptions.ConnectionError):
        loop.run_until_complete(backend.sync())

    assert len(backend.pending[TARGET]) == 1
    assert backend.get(TARGET).failures == 1
    loop.run_until_complete(backend.close())
    loop.close()
