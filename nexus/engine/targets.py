"""Where a request may go: the targets a router plans and how failures move on."""

import random
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.call import Call
from nexus.engine.providers.base import ProviderAdapter
from nexus.engine.snapshot import ConnectionEntry, ModelEntry


@dataclass(frozen=True)
class Target:
    """One model on one provider connection, with the codec that speaks to it."""

    model: ModelEntry
    connection: ConnectionEntry
    adapter: ProviderAdapter
    # Per-target overrides of Plan.retries and Plan.timeout_seconds.
    retries: int | None = None
    timeout_seconds: float | None = None
    # How the router chose this target (strategy path, experiment arm), for audit.
    path: str = ""
    arm: str = ""


@dataclass
class Plan:
    """Targets to try in order, and how often to retry each on retryable failures."""

    targets: list[Target]
    retries: int = 0
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 8.0
    # Statuses that move on to the next target although they are not retryable.
    failover_statuses: frozenset[int] = frozenset()
    route: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # Limit of one attempt until the answer headers (the whole body when not
    # streaming); None uses the gateway's upstream timeout setting.
    timeout_seconds: float | None = None

    def retries_for(self, target: Target) -> int:
        return self.retries if target.retries is None else target.retries

    def timeout_for(self, target: Target, default: float) -> float:
        if target.timeout_seconds is not None:
            return target.timeout_seconds
        return default if self.timeout_seconds is None else self.timeout_seconds

    def retry_delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Return the wait before retrying the same target, or None to move on.

        The wait is a random share of the exponential step (full jitter), and at
        least the provider's retry-after. A retry-after longer than
        max_backoff_seconds means the target will not recover in time, so the plan
        moves on to the next target instead.
        """
        if retry_after is not None and retry_after > self.max_backoff_seconds:
            return None
        step = min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt)
        delay = random.uniform(0, step)
        return max(delay, retry_after or 0.0)


class Router:
    """Plan the targets for a request; the default serves the resolved model only."""

    def plan(
        self,
        call: Call,
        request: Any,
        model: ModelEntry,
        adapters: dict[int, ProviderAdapter],
        connections: dict[int, ConnectionEntry],
    ) -> Plan:
        connection = connections[model.connection_id]
        return Plan(targets=[Target(model, connection, adapters[connection.id])])

    def record(
        self,
        target: Target,
        *,
        ok: bool,
        latency_ms: float,
        status: int,
        retry_after: float | None = None,
        headers: Any = None,
    ) -> None:
        """Learn from one attempt's outcome (health, latency); the default ignores it.

        `headers` are the provider's answer headers when it answered (rate-limit
        headroom), `retry_after` the wait it asked for, in seconds.
        """

    async def close(self) -> None:
        """Stop background work when the gateway stops."""
