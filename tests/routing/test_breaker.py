"""The circuit breaker through the gateway: a failing target is skipped, then probed."""

import time

import httpx
import pytest

from apps.routing.health import read_health
from nexus.engine.routing.redis_health import RedisHealth
from tests.routing.conftest import OPENAI_PATH
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_for

FAILURE = {"status": 503, "error": {"type": "server_error", "message": "down"}}


def target_id(model) -> str:
    return f"{model.pk}:{model.name}"


def wait_until_half_open(gateway, model, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while gateway.runtime.router.health.get(target_id(model)).state != "half_open":
        assert time.monotonic() < deadline, "circuit did not turn half-open"
        time.sleep(0.05)


def ask_for_probe(routing, gateway, model) -> None:
    """Send the request that requests a shared probe and wait until it is claimed.

    With health in Redis, the first request to a half-open target skips it, and the
    next sync claims the probe for the following request. Without Redis, the next
    request probes at once and this does nothing.
    """
    health = gateway.runtime.router.health
    if not isinstance(health, RedisHealth):
        return
    skipped = routing.chat(model.name)
    assert skipped.status_code == 200
    assert skipped.headers["x-nexus-model"] != model.name
    wait_for(lambda: target_id(model) in health.ready_probes, timeout=5)


def test_breaker_skips_then_probes(routing, breaker, gateway):
    breaker(consecutive_failures=2, cooldown_seconds=0.5, min_requests=100)
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    for _ in range(2):
        routing.fake.enqueue(OPENAI_PATH, FAILURE)
        assert routing.chat(primary.name).status_code == 200
    assert gateway.runtime.router.health.get(target_id(primary)).state == "open"
    routing.fake.reset()

    skipped = routing.chat(primary.name)

    assert skipped.status_code == 200
    assert routing.upstream_models() == ["gpt-backup"]
    assert skipped.headers["x-nexus-attempts"] == "1"
    record = routing.audit(skipped).details["routing"]
    assert record["skipped"] == [{"model": primary.name, "reason": "circuit open"}]

    wait_until_half_open(gateway, primary)
    ask_for_probe(routing, gateway, primary)
    routing.fake.reset()
    probe = routing.chat(primary.name)

    assert probe.status_code == 200
    assert routing.upstream_models() == ["gpt-primary"]
    # A success is recorded after its response is written, so the caller may get
    # the response a moment before the breaker closes.
    health = gateway.runtime.router.health
    wait_for(lambda: health.get(target_id(primary)).state == "closed", timeout=5)


def test_failed_probe_reopens_the_circuit(routing, breaker, gateway):
    breaker(consecutive_failures=1, cooldown_seconds=0.3, min_requests=100)
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(OPENAI_PATH, FAILURE)
    routing.chat(primary.name)
    wait_until_half_open(gateway, primary)
    ask_for_probe(routing, gateway, primary)
    routing.fake.reset()
    routing.fake.enqueue(OPENAI_PATH, FAILURE)

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-primary", "gpt-backup"]
    health = gateway.runtime.router.health.get(target_id(primary))
    assert health.state == "open"
    assert health.cooldown_seconds == 0.6


def test_all_open_returns_503(routing, breaker):
    breaker(consecutive_failures=1, cooldown_seconds=30, min_requests=100)
    primary = routing.model("gpt-primary")
    route = routing.route(primary, primary.name)
    routing.fake.enqueue(OPENAI_PATH, FAILURE)
    assert routing.chat(primary.name).status_code == 503
    routing.fake.reset()

    response = routing.chat(primary.name)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_healthy_target"
    assert route.name in response.json()["error"]["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert routing.fake.requests == []


def test_model_without_route_is_never_skipped(routing, breaker, gateway):
    breaker(consecutive_failures=1, cooldown_seconds=30, min_requests=100)
    model = routing.model("gpt-plain")
    gateway.refresh()
    routing.fake.enqueue(OPENAI_PATH, FAILURE)
    assert routing.chat(model.name).status_code == 503
    assert gateway.runtime.router.health.get(target_id(model)).state == "open"

    response = routing.chat(model.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-plain", "gpt-plain"]


@pytest.mark.shared_servers
def test_open_circuit_reaches_other_process(routing, breaker, gateway):
    breaker(consecutive_failures=2, cooldown_seconds=60, min_requests=100)
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    process = GatewayProcess(
        {
            "NEXUS_ROUTING_BREAKER_FAILURES": "2",
            "NEXUS_ROUTING_BREAKER_COOLDOWN_SECONDS": "60",
            "NEXUS_ROUTING_HEALTH_SYNC_SECONDS": "0.1",
        }
    )
    try:
        assert served_by(process, routing, primary) == primary.name
        # The other process's success must reach Redis before the failures, or it
        # resets the shared count of failures in a row between them.
        time.sleep(0.5)
        for _ in range(2):
            routing.fake.enqueue(OPENAI_PATH, FAILURE)
            assert routing.chat(primary.name).status_code == 200
        wait_for_shared_state(primary, "open")

        deadline = time.monotonic() + 5
        while served_by(process, routing, primary) != backup.name:
            assert time.monotonic() < deadline, "other process still sends to primary"
            time.sleep(0.1)
    finally:
        process.stop()


def served_by(process, routing, model) -> str:
    response = httpx.post(
        f"{process.url}/v1/chat/completions",
        json={"model": model.name, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {routing.key}"},
        timeout=10,
    )
    assert response.status_code == 200
    return response.headers["x-nexus-model"]


def wait_for_shared_state(model, state: str, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while read_health([target_id(model)])[target_id(model)].state != state:
        assert time.monotonic() < deadline, f"Redis never showed the circuit {state}"
        time.sleep(0.05)
