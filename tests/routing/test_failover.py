"""Retries and failover through the gateway, against scripted provider failures."""

import pytest

from tests.routing.conftest import ANTHROPIC_PATH, OPENAI_PATH


def overloaded(status: int, error_type: str = "overloaded_error") -> dict:
    return {"status": status, "error": {"type": error_type, "message": "Overloaded"}}


@pytest.mark.parametrize(
    "failure",
    [
        overloaded(429, "rate_limit_error"),
        overloaded(529),
        overloaded(500, "api_error"),
        overloaded(502, "api_error"),
        overloaded(503, "api_error"),
        overloaded(504, "api_error"),
        {"then": "close"},
    ],
    ids=["429", "529", "500", "502", "503", "504", "connection-closed"],
)
def test_retryable_failure_fails_over(routing, failure):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    route = routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(OPENAI_PATH, failure)

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-primary", "gpt-backup"]
    assert response.headers["x-nexus-model"] == backup.name
    assert response.headers["x-nexus-provider"] == routing.openai.name
    assert response.headers["x-nexus-route"] == route.name
    assert response.headers["x-nexus-attempts"] == "2"


def test_timeout_fails_over(routing):
    primary = routing.model("gpt-slow")
    backup = routing.model("gpt-fast")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        timeout_seconds=0.3,
    )
    routing.fake.enqueue(OPENAI_PATH, {"delay": 2, "reply": {"text": "late"}})

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-slow", "gpt-fast"]
    event = routing.audit(response)
    first, second = event.details["attempts"]
    assert first["error"] == "upstream_timeout"
    assert first["status"] == 504
    assert second["status"] == 200


def test_per_target_timeout_overrides_route(routing):
    primary = routing.model("gpt-slow")
    backup = routing.model("gpt-fast")
    routing.route(
        primary,
        {
            "strategy": "fallback",
            "targets": [{"model": primary.name, "timeout_seconds": 0.3}, backup.name],
        },
        timeout_seconds=30,
    )
    routing.fake.enqueue(OPENAI_PATH, {"delay": 2, "reply": {"text": "late"}})

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert response.headers["x-nexus-model"] == backup.name


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_error_neither_retries_nor_fails_over(routing, status):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        retries=2,
    )
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "status": status,
            "error": {"type": "invalid_request_error", "message": "bad"},
        },
    )

    response = routing.chat(primary.name)

    assert response.status_code == status
    assert routing.upstream_models() == ["gpt-primary"]
    assert response.headers["x-nexus-attempts"] == "1"


def test_listed_client_error_fails_over_without_retry(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        retries=2,
        failover_statuses=[404],
    )
    routing.fake.enqueue(
        OPENAI_PATH,
        {"status": 404, "error": {"type": "not_found_error", "message": "gone"}},
    )

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-primary", "gpt-backup"]


def test_retries_same_target_with_backoff(routing):
    primary = routing.model("gpt-flaky")
    routing.route(
        primary, primary.name, retries=2, backoff_seconds=0.01, max_backoff_seconds=0.05
    )
    routing.fake.enqueue(OPENAI_PATH, overloaded(503, "api_error"))
    routing.fake.enqueue(OPENAI_PATH, overloaded(529))

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-flaky"] * 3
    attempts = routing.audit(response).details["attempts"]
    assert [attempt["status"] for attempt in attempts] == [503, 529, 200]
    assert attempts[0]["delay_ms"] == 0
    # Full jitter: each wait is at most its exponential step (10 ms, then 20 ms).
    assert 0 <= attempts[1]["delay_ms"] <= 10
    assert 0 <= attempts[2]["delay_ms"] <= 20


def test_per_target_retries_override_route(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {
            "strategy": "fallback",
            "targets": [{"model": primary.name, "retries": 1}, backup.name],
        },
        retries=0,
        backoff_seconds=0.01,
    )
    routing.fake.enqueue(OPENAI_PATH, overloaded(500, "api_error"))
    routing.fake.enqueue(OPENAI_PATH, overloaded(500, "api_error"))

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-primary", "gpt-primary", "gpt-backup"]


def test_long_retry_after_moves_on_instead_of_waiting(routing):
    primary = routing.model("gpt-limited")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {"strategy": "fallback", "targets": [primary.name, backup.name]},
        retries=3,
        max_backoff_seconds=1,
    )
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "status": 429,
            "headers": {"retry-after": "20"},
            "error": {"type": "rate_limit_error", "message": "slow down"},
        },
    )

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-limited", "gpt-backup"]


def test_target_in_retry_after_window_is_tried_last(routing):
    primary = routing.model("gpt-limited")
    backup = routing.model("gpt-backup")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(
        OPENAI_PATH,
        {
            "status": 429,
            "headers": {"retry-after": "30"},
            "error": {"type": "rate_limit_error", "message": "slow down"},
        },
    )
    routing.chat(primary.name)
    routing.fake.reset()

    response = routing.chat(primary.name)

    assert response.status_code == 200
    assert routing.upstream_models() == ["gpt-backup"]


def test_all_targets_failing_returns_last_error(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("claude-backup", anthropic=True)
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(OPENAI_PATH, overloaded(503, "api_error"))
    routing.fake.enqueue(ANTHROPIC_PATH, overloaded(529))

    response = routing.chat(primary.name)

    assert response.status_code == 529
    assert response.json()["error"]["type"] == "overloaded_error"
    assert response.headers["x-nexus-attempts"] == "2"
    attempts = routing.audit(response).details["attempts"]
    assert [attempt["status"] for attempt in attempts] == [503, 529]


def test_attempts_record_strategy_path(routing):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary, {"strategy": "fallback", "targets": [primary.name, backup.name]}
    )
    routing.fake.enqueue(OPENAI_PATH, overloaded(500, "api_error"))

    response = routing.chat(primary.name)

    event = routing.audit(response)
    paths = [attempt["path"] for attempt in event.details["attempts"]]
    assert paths == [
        f"fallback[0]/{primary.name}",
        f"fallback[1]/{backup.name}",
    ]
    assert event.details["routing"]["strategy"] == "fallback"
    assert event.model == backup.name
