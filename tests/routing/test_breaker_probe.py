"""One half-open probe for the whole fleet of gateway processes sharing Redis.

The unit tests drive two RedisHealth backends with one fake clock against real
Redis. The gateway tests run the in-test gateway and a second gateway process. The
failing target is an Anthropic model, so its requests are the fake provider's
requests on /v1/messages. The backup is an OpenAI model.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from apps.routing.health import read_health
from nexus.engine.routing.health import CLOSED, HALF_OPEN, OPEN, BreakerConfig
from nexus.engine.routing.outcomes import Outcome
from nexus.engine.routing.redis_health import KEY_PREFIX, RedisHealth
from tests.routing.conftest import ANTHROPIC_PATH
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.shared_servers

CONFIG = BreakerConfig(
    consecutive_failures=3,
    cooldown_seconds=10,
    max_cooldown_seconds=25,
    probe_timeout_seconds=5,
)
TARGET = "7:gpt"
FAILURE = {"status": 503, "error": {"type": "api_error", "message": "down"}}
# Cooldown of the gateway tests in seconds. A failed probe doubles it.
COOLDOWN = 2
# Requests sent through each gateway at once after the cooldown.
BURST = 8


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Fleet:
    """Two RedisHealth backends on one key prefix, as two gateway processes."""

    def __init__(self, url: str = "") -> None:
        self.clock = Clock()
        self.loop = asyncio.new_event_loop()
        url = url or os.environ["REDIS_URL"]
        prefix = f"test:routing:{uuid.uuid4().hex}:"
        self.first = RedisHealth(url, CONFIG, self.clock, key_prefix=prefix)
        self.second = RedisHealth(url, CONFIG, self.clock, key_prefix=prefix)

    def sync(self, backend: RedisHealth) -> None:
        self.loop.run_until_complete(backend.sync([TARGET]))

    def record(self, backend: RedisHealth, ok: bool) -> None:
        status = 200 if ok else 503
        backend.record(TARGET, Outcome(ok=ok, latency_ms=5, status=status))
        self.sync(backend)

    def claim(self, backend: RedisHealth) -> bool:
        """Ask for the probe, sync, and return whether the next request may probe."""
        assert backend.admit(TARGET) is False
        self.sync(backend)
        return backend.admit(TARGET)

    def open_then_wait(self) -> None:
        """Open the breaker from the first backend and let its cooldown pass."""
        for _ in range(3):
            self.record(self.first, ok=False)
        self.sync(self.second)
        assert self.second.get(TARGET).state == OPEN
        self.clock.now += CONFIG.cooldown_seconds

    def close(self) -> None:
        for backend in (self.first, self.second):
            self.loop.run_until_complete(backend.close())
        self.loop.close()


@pytest.fixture
def fleet():
    fleet = Fleet()
    yield fleet
    fleet.close()


def test_one_backend_claims_the_probe(fleet):
    fleet.open_then_wait()
    assert fleet.first.admit(TARGET) is False
    assert fleet.second.admit(TARGET) is False
    assert fleet.first.requested_probes == {TARGET}

    fleet.sync(fleet.first)
    fleet.sync(fleet.second)

    assert fleet.first.admit(TARGET) is True
    assert fleet.second.admit(TARGET) is False
    assert fleet.second.admit(TARGET) is False
    assert fleet.first.admit(TARGET) is False
    assert fleet.second.get(TARGET).state == HALF_OPEN
    assert fleet.first.requested_probes == set()
    assert fleet.second.requested_probes == set()
    assert fleet.second.ready_probes == set()


def test_synced_claim_is_known_without_claiming(fleet):
    fleet.open_then_wait()
    assert fleet.claim(fleet.second) is True

    fleet.sync(fleet.first)

    assert fleet.first.states[TARGET].probe_owner == fleet.second.owner
    assert fleet.first.admit(TARGET) is False
    assert fleet.first.requested_probes == set()


def test_older_sync_reply_keeps_own_claim(fleet, monkeypatch):
    fleet.open_then_wait()
    backend = fleet.first
    run = backend._run
    probes = []

    async def claim_during_sync(*args):
        results = await run(*args)
        # Another sync claims the probe and a request sends it while this sync's
        # reply, computed before the claim, is on its way.
        monkeypatch.setattr(backend, "_run", run)
        assert backend.admit(TARGET) is False
        await backend.sync([TARGET])
        probes.append(backend.admit(TARGET))
        return results

    monkeypatch.setattr(backend, "_run", claim_during_sync)
    fleet.sync(backend)

    assert probes == [True]
    assert backend.states[TARGET].probe_owner == backend.owner
    assert backend.admit(TARGET) is False
    assert backend.requested_probes == set()


def test_successful_probe_closes_for_both(fleet):
    fleet.open_then_wait()
    assert fleet.claim(fleet.first) is True
    assert fleet.claim(fleet.second) is False

    fleet.record(fleet.first, ok=True)
    fleet.sync(fleet.second)

    assert fleet.second.get(TARGET).state == CLOSED
    assert fleet.second.admit(TARGET) is True


def test_failed_probe_reopens_for_both(fleet):
    fleet.open_then_wait()
    assert fleet.claim(fleet.first) is True
    assert fleet.claim(fleet.second) is False

    fleet.record(fleet.first, ok=False)
    fleet.sync(fleet.second)

    health = fleet.second.get(TARGET)
    assert health.state == OPEN
    assert health.cooldown_seconds == 20
    assert fleet.second.admit(TARGET) is False
    assert fleet.second.requested_probes == set()
    fleet.clock.now += 20
    assert fleet.claim(fleet.second) is True
    assert fleet.claim(fleet.first) is False


def test_stalled_probe_claim_lapses(fleet):
    fleet.open_then_wait()
    assert fleet.claim(fleet.first) is True
    assert fleet.claim(fleet.second) is False

    fleet.clock.now += CONFIG.probe_timeout_seconds

    assert fleet.claim(fleet.second) is True
    assert fleet.claim(fleet.first) is False


def test_unused_probe_claim_lapses(fleet):
    fleet.open_then_wait()
    assert fleet.first.admit(TARGET) is False
    fleet.sync(fleet.first)
    assert fleet.first.ready_probes == {TARGET}
    assert fleet.claim(fleet.second) is False

    fleet.clock.now += CONFIG.probe_timeout_seconds

    assert fleet.claim(fleet.second) is True
    assert fleet.claim(fleet.first) is False
    assert fleet.first.ready_probes == set()


def test_admit_does_no_network_io(fleet, monkeypatch):
    fleet.open_then_wait()
    calls = []

    with blocked_sockets(monkeypatch, calls):
        assert fleet.first.admit(TARGET) is False
        assert fleet.second.admit(TARGET) is False
    fleet.sync(fleet.first)
    fleet.sync(fleet.second)
    with blocked_sockets(monkeypatch, calls):
        assert fleet.first.admit(TARGET) is True
        assert fleet.second.admit(TARGET) is False

    assert calls == []


def test_closed_open_breakers_skip_claims():
    fleet = Fleet("redis://127.0.0.1:1/0")
    try:
        fleet.first.record(TARGET, Outcome(ok=True, latency_ms=5, status=200))
        assert fleet.first.admit(TARGET) is True
        for _ in range(3):
            fleet.first.record(TARGET, Outcome(ok=False, latency_ms=5, status=503))
        assert fleet.first.admit(TARGET) is False

        assert fleet.first.requested_probes == set()
        assert fleet.first.client is None
        assert fleet.first.shared_probes is True
    finally:
        fleet.close()


def test_unreachable_redis_falls_back_to_local_probes(caplog):
    fleet = Fleet("redis://127.0.0.1:1/0")
    backend = fleet.first
    caplog.set_level(logging.WARNING, logger="nexus.engine.routing.redis_health")
    try:
        for _ in range(3):
            backend.record(TARGET, Outcome(ok=False, latency_ms=5, status=503))
        fleet.clock.now += CONFIG.cooldown_seconds
        assert backend.admit(TARGET) is False
        with pytest.raises(redis.ConnectionError):
            fleet.loop.run_until_complete(backend.sync([TARGET]))

        assert backend.admit(TARGET) is True
        assert backend.admit(TARGET) is False
        backend.record(TARGET, Outcome(ok=False, latency_ms=5, status=503))
        with pytest.raises(redis.ConnectionError):
            fleet.loop.run_until_complete(backend.sync([TARGET]))
        fleet.clock.now += 20
        assert backend.admit(TARGET) is True

        warnings = [
            record
            for record in caplog.records
            if record.name == "nexus.engine.routing.redis_health"
            and record.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        assert "claims its own half-open probes" in warnings[0].getMessage()
    finally:
        fleet.close()


@contextlib.contextmanager
def blocked_sockets(monkeypatch, calls: list[str]):
    """Make every socket connect, send and receive fail and be listed in calls."""

    def block(name: str):
        def method(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"socket.{name} was called")

        return method

    with monkeypatch.context() as patch:
        for name in ("connect", "connect_ex", "send", "sendall", "recv", "recv_into"):
            patch.setattr(socket.socket, name, block(name))
        yield


@pytest.fixture
def two_gateways(routing, breaker, gateway):
    """The in-test gateway and a second process, both routing primary then backup."""
    breaker(consecutive_failures=2, cooldown_seconds=COOLDOWN, min_requests=100)
    router = gateway.runtime.router
    sync_seconds, router.sync_seconds = router.sync_seconds, 0.1
    primary = routing.model("claude-sonnet-4-5", anthropic=True)
    backup = routing.model("gpt-backup")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    process = GatewayProcess(
        {
            "NEXUS_ROUTING_BREAKER_FAILURES": "2",
            "NEXUS_ROUTING_BREAKER_COOLDOWN_SECONDS": str(COOLDOWN),
            "NEXUS_ROUTING_BREAKER_MIN_REQUESTS": "100",
            "NEXUS_ROUTING_HEALTH_SYNC_SECONDS": "0.1",
        }
    )
    urls = [gateway.url, process.url]
    try:
        open_breaker(routing, urls, primary, backup)
        yield urls, primary, backup
    finally:
        process.stop()
        router.sync_seconds = sync_seconds


def open_breaker(routing, urls, primary, backup) -> None:
    """Fail primary until its breaker is open and both gateways skip it."""
    for _ in range(2):
        routing.fake.enqueue(ANTHROPIC_PATH, FAILURE)
        assert model_of(chat(urls[0], routing.key, primary)) == backup.name
    wait_for(lambda: shared_state(primary) == OPEN, timeout=5)
    wait_for(
        lambda: model_of(chat(urls[1], routing.key, primary)) == backup.name,
        timeout=5,
    )
    routing.fake.reset()
    assert shared_state(primary) == OPEN, "cooldown ended before the burst was ready"


def test_gateways_send_one_probe_that_reopens(routing, two_gateways):
    urls, primary, backup = two_gateways
    # Every request that reaches primary hangs until the fake provider is reset.
    for _ in range(2 * BURST):
        routing.fake.enqueue(ANTHROPIC_PATH, {"hang": True})
    wait_for(lambda: shared_state(primary) == HALF_OPEN, timeout=10)
    ask_for_probe(routing, urls, primary, backup)

    with ThreadPoolExecutor(2 * BURST) as pool:
        futures = burst(pool, urls, routing.key, primary)
        wait_for(
            lambda: (
                sum(f.done() for f in futures) + len(probes(routing)) >= len(futures)
            ),
            timeout=20,
        )

        assert len(probes(routing)) == 1
        answered = [f.result() for f in futures if f.done()]
        assert len(answered) == len(futures) - 1
        assert {model_of(response) for response in answered} == {backup.name}
        routing.fake.reset()
        probe = next(f for f in futures if not f.done()).result()

    assert model_of(probe) == backup.name
    wait_for(lambda: shared_state(primary) == OPEN, timeout=5)
    assert read_health([target_id(primary)])[target_id(primary)].cooldown_seconds == (
        2 * COOLDOWN
    )
    for url in urls:
        assert model_of(chat(url, routing.key, primary)) == backup.name
    assert probes(routing) == []


def test_gateways_send_one_probe_that_closes(routing, two_gateways):
    urls, primary, backup = two_gateways
    # The probe's response is delayed, so the burst is planned while it is in flight.
    routing.fake.enqueue(ANTHROPIC_PATH, {"delay": 3})
    wait_for(lambda: shared_state(primary) == HALF_OPEN, timeout=10)
    ask_for_probe(routing, urls, primary, backup)

    with ThreadPoolExecutor(2 * BURST) as pool:
        responses = [f.result() for f in burst(pool, urls, routing.key, primary)]

    served = [model_of(response) for response in responses]
    assert served.count(primary.name) == 1
    assert served.count(backup.name) == len(responses) - 1
    assert len(probes(routing)) == 1
    wait_for(lambda: shared_state(primary) == CLOSED, timeout=5)
    for url in urls:
        wait_for(
            lambda url=url: model_of(chat(url, routing.key, primary)) == primary.name,
            timeout=5,
        )


def ask_for_probe(routing, urls, primary, backup) -> None:
    """Send one request through each gateway and wait until one claims the probe.

    Each request skips the half-open primary and requests its probe, which the
    gateway's next sync claims in Redis.
    """
    for url in urls:
        assert model_of(chat(url, routing.key, primary)) == backup.name
    wait_for(lambda: probe_owner(primary) != "", timeout=5)
    assert probes(routing) == []


def probe_owner(model) -> str:
    """Return the gateway that owns the probe claim of the model in Redis."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        owner = client.hget(KEY_PREFIX + target_id(model), "probe_owner")
    finally:
        client.close()
    return (owner or b"").decode()


def burst(pool, urls, key, model) -> list:
    """Send BURST requests through each gateway at once and return their futures."""
    return [pool.submit(chat, url, key, model) for _ in range(BURST) for url in urls]


def chat(url: str, key: str, model) -> httpx.Response:
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model.name, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def model_of(response: httpx.Response) -> str:
    return response.headers["x-nexus-model"]


def probes(routing) -> list:
    """Return the requests that reached the failing target's endpoint."""
    return [
        request for request in routing.fake.requests if request.path == ANTHROPIC_PATH
    ]


def target_id(model) -> str:
    return f"{model.pk}:{model.name}"


def shared_state(model) -> str:
    return read_health([target_id(model)])[target_id(model)].state
