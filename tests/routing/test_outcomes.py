"""Classifying attempt outcomes and planning the wait before a retry."""

import random

import pytest

from nexus.engine.routing.outcomes import (
    counts_as_failure,
    parse_headroom,
    parse_retry_after,
)
from nexus.engine.targets import Plan


@pytest.mark.parametrize(
    ("ok", "status", "failed"),
    [
        (True, 200, False),
        (False, 0, True),
        (False, 400, False),
        (False, 404, False),
        (False, 401, True),
        (False, 408, True),
        (False, 429, True),
        (False, 500, True),
        (False, 529, True),
    ],
)
def test_failure_classes(ok, status, failed):
    assert counts_as_failure(ok, status) is failed


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers, seconds):
    assert parse_retry_after(headers, now=0.0) == seconds


def test_headroom_is_the_smallest_remaining_share():
    headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "80",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "500",
    }

    assert parse_headroom(headers) == 0.05
    assert parse_headroom({"anthropic-ratelimit-requests-limit": "50"}) is None


def test_retry_delay_is_full_jitter_within_the_step():
    plan = Plan(targets=[], backoff_seconds=0.5, max_backoff_seconds=3)
    random.seed(3)

    delays = [
        [plan.retry_delay(attempt, None) for _ in range(200)] for attempt in range(4)
    ]

    for attempt, steps in enumerate(delays):
        step = min(3, 0.5 * 2**attempt)
        assert all(0 <= delay <= step for delay in steps)
        assert max(steps) > step / 2


def test_retry_delay_honours_short_retry_after():
    plan = Plan(targets=[], backoff_seconds=0.1, max_backoff_seconds=5)

    assert plan.retry_delay(0, 2.0) >= 2.0


def test_retry_delay_gives_up_on_long_retry_after():
    plan = Plan(targets=[], backoff_seconds=0.1, max_backoff_seconds=5)

    assert plan.retry_delay(0, 20.0) is None
