"""What failing over costs: the failed attempt's time and at most one backoff interval.

The fake provider delays the failing response by a scripted time, and the gateway
records each attempt's start offset, duration and the backoff wait before it. The
checks compare those records, not the test's own clock.
"""

from tests.routing.conftest import OPENAI_PATH

SCRIPTED_DELAY = 0.2
OVERLOADED = {
    "status": 529,
    "delay": SCRIPTED_DELAY,
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
# Gateway work between two attempts (recording, encoding the next request); no I/O.
BOOKKEEPING_MS = 50


def added_by_failover(first: dict, second: dict) -> float:
    """Return the time from the start of the failed attempt to the start of the next."""
    return second["start_ms"] - first["start_ms"]


def test_failover_adds_only_the_failed_attempt(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        backoff_seconds=0.5,
    )
    routing.fake.enqueue(OPENAI_PATH, OVERLOADED)

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert len(routing.fake.requests) == 2
    first, second = routing.audit(response).details["attempts"]
    assert first["ms"] >= SCRIPTED_DELAY * 1000
    assert second["delay_ms"] == 0
    assert added_by_failover(first, second) <= first["ms"] + BOOKKEEPING_MS


def test_retry_then_failover_adds_one_backoff_per_retry(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        retries=1,
        backoff_seconds=0.3,
        max_backoff_seconds=1,
    )
    routing.fake.enqueue(OPENAI_PATH, OVERLOADED)
    routing.fake.enqueue(OPENAI_PATH, OVERLOADED)

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-primary", "gpt-primary", "gpt-backup"]
    first, retry, failover = routing.audit(response).details["attempts"]
    assert 0 <= retry["delay_ms"] <= 300
    assert added_by_failover(first, retry) <= (
        first["ms"] + retry["delay_ms"] + BOOKKEEPING_MS
    )
    assert failover["delay_ms"] == 0
    assert added_by_failover(retry, failover) <= retry["ms"] + BOOKKEEPING_MS


def test_timeout_failover_costs_the_timeout(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        timeout_seconds=0.25,
    )
    routing.fake.enqueue(OPENAI_PATH, {"delay": 3, "reply": {"text": "late"}})

    response = routing.chat(primary.name)

    first, second = routing.audit(response).details["attempts"]
    assert first["error"] == "upstream_timeout"
    assert 250 <= first["ms"] < 3000
    assert second["delay_ms"] == 0
    assert added_by_failover(first, second) <= first["ms"] + BOOKKEEPING_MS
