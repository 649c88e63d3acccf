"""What one upstream attempt tells routing: failure class, retry-after and headroom."""

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

# Statuses that mark the target itself as unhealthy. Other 4xx answers are the
# caller's fault and count as a healthy target: the provider answered properly.
# 401 and 403 count because a rejected credential breaks every request to the target.
UNHEALTHY_4XX = frozenset({401, 403, 408, 429})

# Rate-limit header pairs (remaining, limit) that providers send on every answer.
HEADROOM_HEADERS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-limit-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-limit-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-limit"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-limit"),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-limit",
    ),
)


@dataclass(frozen=True)
class Outcome:
    """One attempt against one target, as the health tracker records it.

    `latency_ms` is the time until the provider's answer headers arrived (or until
    the attempt failed). `headroom` is the smallest remaining share of the
    provider's rate limits, from 0 to 1, or None when the answer carried none.
    """

    ok: bool
    latency_ms: float
    status: int = 0
    retry_after: float | None = None
    headroom: float | None = None
    at: float = 0.0


def counts_as_failure(ok: bool, status: int) -> bool:
    """Return whether an attempt's outcome counts against the target's health."""
    if ok:
        return False
    return status == 0 or status >= 500 or status in UNHEALTHY_4XX


def parse_retry_after(
    headers: Mapping[str, str], now: float | None = None
) -> float | None:
    """Return the wait the provider asked for, in seconds, or None.

    Reads `retry-after-ms` (OpenAI) first, then `retry-after` as seconds or as an
    HTTP date. Negative and unparsable values count as absent.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        value = max(0.0, moment.timestamp() - (time.time() if now is None else now))
    return value if value >= 0 else None


def parse_headroom(headers: Mapping[str, str]) -> float | None:
    """Return the smallest remaining/limit share over the rate-limit headers, or None."""
    shares = []
    for remaining_name, limit_name in HEADROOM_HEADERS:
        remaining, limit = headers.get(remaining_name), headers.get(limit_name)
        if not remaining or not limit:
            continue
        try:
            remaining_value, limit_value = float(remaining), float(limit)
        except ValueError:
            continue
        if limit_value > 0:
            shares.append(min(1.0, max(0.0, remaining_value / limit_value)))
    return min(shares) if shares else None
