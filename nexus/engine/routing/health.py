"""Per-target health: a rolling error rate, a latency EWMA and a circuit breaker.

The breaker is closed while a target works. It opens when the target fails
`consecutive_failures` times in a row, or when at least `min_requests` attempts in
the rolling window failed at `error_rate` or more. An open target is skipped until
its cooldown ends; then it is half-open and one request probes it. A successful
probe closes the breaker and clears the window; a failed probe opens it again with
twice the cooldown, up to `max_cooldown_seconds`.

`BreakerState` holds the rules. `MemoryHealth` keeps the states of one process;
`nexus.engine.routing.redis_health.RedisHealth` shares them between processes.
Both serve reads and `admit` from local memory, so choosing a target does no I/O
(a test patches the sockets to check it). The Redis backend claims half-open probes
during its periodic sync instead.
"""

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from nexus.engine.routing.outcomes import Outcome, counts_as_failure

logger = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# A latency sample older than this no longer describes the target.
LATENCY_STALE_SECONDS = 300.0
# Rate-limit headroom from an answer older than this is unknown again.
HEADROOM_STALE_SECONDS = 60.0


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds of the circuit breaker and the rolling window, in seconds."""

    window_seconds: float = 60.0
    bucket_seconds: float = 10.0
    min_requests: int = 10
    error_rate: float = 0.5
    consecutive_failures: int = 5
    cooldown_seconds: float = 30.0
    max_cooldown_seconds: float = 300.0
    # A claimed probe that never reports back frees the half-open slot after this.
    # NOTE: no setting changes this yet. A claimed probe that no request uses keeps
    # the target's probe from other processes until this time has passed.
    probe_timeout_seconds: float = 60.0
    # Weight of the newest latency sample in the moving average.
    latency_alpha: float = 0.2

    def __post_init__(self) -> None:
        if self.bucket_seconds <= 0 or self.window_seconds < self.bucket_seconds:
            raise ValueError(
                "window_seconds must be at least bucket_seconds, and both positive."
            )
        if not 0 < self.error_rate <= 1:
            raise ValueError(f"error_rate must be in (0, 1], got {self.error_rate}.")
        if not 0 < self.latency_alpha <= 1:
            raise ValueError(
                f"latency_alpha must be in (0, 1], got {self.latency_alpha}."
            )

    @property
    def buckets(self) -> int:
        return max(1, math.ceil(self.window_seconds / self.bucket_seconds))


@dataclass(frozen=True)
class TargetHealth:
    """A read-only view of one target's health at one moment."""

    state: str = CLOSED
    requests: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    latency_ms: float | None = None
    open_until: float = 0.0
    cooldown_seconds: float = 0.0
    retry_after_until: float = 0.0
    headroom: float | None = None

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass
class BreakerState:
    """The mutable health record of one target and the breaker's transition rules."""

    state: str = CLOSED
    # Bucket index (time // bucket_seconds) to [successes, failures].
    buckets: dict[int, list[int]] = field(default_factory=dict)
    consecutive_failures: int = 0
    latency_ms: float | None = None
    latency_at: float = 0.0
    opened_at: float = 0.0
    open_until: float = 0.0
    cooldown_seconds: float = 0.0
    probe_owner: str = ""
    probe_at: float = 0.0
    retry_after_until: float = 0.0
    headroom: float | None = None
    headroom_at: float = 0.0

    def apply(self, outcome: Outcome, config: BreakerConfig) -> None:
        """Count one attempt's outcome and move the breaker if it must."""
        now = outcome.at
        self.tick(now)
        self._measure(outcome, config)
        failed = counts_as_failure(outcome.ok, outcome.status)
        bucket = self.buckets.setdefault(int(now // config.bucket_seconds), [0, 0])
        bucket[1 if failed else 0] += 1
        self._trim(now, config)
        if self.state == HALF_OPEN:
            if failed:
                # Doubles the last cooldown; a record without one starts at the base.
                cooldown = 2 * max(self.cooldown_seconds, config.cooldown_seconds / 2)
                self._open(now, min(config.max_cooldown_seconds, cooldown))
            else:
                self._close()
            return
        self.consecutive_failures = self.consecutive_failures + 1 if failed else 0
        if self.state == CLOSED and failed and self._should_open(now, config):
            self._open(now, config.cooldown_seconds)

    def tick(self, now: float) -> None:
        """Let an open breaker whose cooldown ended become half-open."""
        if self.state == OPEN and now >= self.open_until:
            self.state = HALF_OPEN
            self.probe_owner = ""
            self.probe_at = 0.0

    def probe_in_flight(self, now: float, config: BreakerConfig) -> bool:
        """Return whether a claimed probe may still report its outcome."""
        return (
            bool(self.probe_owner)
            and now - self.probe_at < config.probe_timeout_seconds
        )

    def claim_probe(self, owner: str, now: float, config: BreakerConfig) -> bool:
        """Let owner send the one probe of a half-open target; True if it may."""
        self.tick(now)
        if self.state != HALF_OPEN or self.probe_in_flight(now, config):
            return False
        self.probe_owner, self.probe_at = owner, now
        return True

    def view(self, now: float, config: BreakerConfig) -> TargetHealth:
        """Return the health as of now, without changing the stored state."""
        successes = failures = 0
        oldest = int((now - config.window_seconds) // config.bucket_seconds)
        for index, (ok_count, failed_count) in self.buckets.items():
            if index > oldest:
                successes += ok_count
                failures += failed_count
        state = self.state
        if state == OPEN and now >= self.open_until:
            state = HALF_OPEN
        latency = self.latency_ms
        if latency is not None and now - self.latency_at > LATENCY_STALE_SECONDS:
            latency = None
        headroom = self.headroom
        if headroom is not None and now - self.headroom_at > HEADROOM_STALE_SECONDS:
            headroom = None
        return TargetHealth(
            state=state,
            requests=successes + failures,
            failures=failures,
            consecutive_failures=self.consecutive_failures,
            latency_ms=latency,
            open_until=self.open_until if state == OPEN else 0.0,
            cooldown_seconds=self.cooldown_seconds,
            retry_after_until=self.retry_after_until,
            headroom=headroom,
        )

    def _measure(self, outcome: Outcome, config: BreakerConfig) -> None:
        if outcome.ok:
            if self.latency_ms is None:
                self.latency_ms = outcome.latency_ms
            else:
                alpha = config.latency_alpha
                self.latency_ms += alpha * (outcome.latency_ms - self.latency_ms)
            self.latency_at = outcome.at
        if outcome.retry_after is not None:
            self.retry_after_until = max(
                self.retry_after_until, outcome.at + outcome.retry_after
            )
        if outcome.headroom is not None:
            self.headroom, self.headroom_at = outcome.headroom, outcome.at

    def _should_open(self, now: float, config: BreakerConfig) -> bool:
        if self.consecutive_failures >= config.consecutive_failures:
            return True
        view = self.view(now, config)
        return (
            view.requests >= config.min_requests
            and view.error_rate >= config.error_rate
        )

    def _open(self, now: float, cooldown: float) -> None:
        self.state = OPEN
        self.opened_at = now
        self.cooldown_seconds = cooldown
        self.open_until = now + cooldown
        self.probe_owner = ""

    def _close(self) -> None:
        self.state = CLOSED
        self.buckets.clear()
        self.consecutive_failures = 0
        self.open_until = 0.0
        self.cooldown_seconds = 0.0
        self.probe_owner = ""

    def _trim(self, now: float, config: BreakerConfig) -> None:
        oldest = int((now - config.window_seconds) // config.bucket_seconds)
        for index in [index for index in self.buckets if index <= oldest]:
            del self.buckets[index]


class HealthBackend:
    """Health of every target, readable without I/O; subclasses may share it.

    Targets are named by a string id. Reads, `admit` and `record` are synchronous
    and touch local memory only. `sync` exchanges state with a shared store, if
    any, and claims there the half-open probes that `admit` requested.
    """

    def __init__(
        self,
        config: BreakerConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or BreakerConfig()
        self.clock = clock
        # Names this process when it claims a half-open probe.
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.states: dict[str, BreakerState] = {}

    def get(self, target_id: str) -> TargetHealth:
        """Return the target's health as of now (closed and empty if unknown)."""
        state = self.states.get(target_id)
        if state is None:
            return TargetHealth()
        return state.view(self.clock(), self.config)

    def admit(self, target_id: str) -> bool:
        """Return whether a request may go to the target now.

        A half-open target admits one request, the probe; this call claims it.
        """
        state = self.states.get(target_id)
        if state is None:
            return True
        now = self.clock()
        state.tick(now)
        if state.state == CLOSED:
            return True
        if state.state == OPEN:
            return False
        return state.claim_probe(self.owner, now, self.config)

    def record(self, target_id: str, outcome: Outcome) -> None:
        """Count one attempt's outcome."""
        outcome = self.stamp(outcome)
        state = self.states.setdefault(target_id, BreakerState())
        before = state.state
        state.apply(outcome, self.config)
        if state.state == OPEN and before != OPEN:
            logger.warning(
                "circuit of target %s opened for %.1f s",
                target_id,
                state.cooldown_seconds,
                extra={"target": target_id},
            )
        elif state.state == CLOSED and before != CLOSED:
            logger.info(
                "circuit of target %s closed", target_id, extra={"target": target_id}
            )

    def stamp(self, outcome: Outcome) -> Outcome:
        """Return the outcome with its time set to now if it has none."""
        return outcome if outcome.at else replace(outcome, at=self.clock())

    def reset(self, target_id: str) -> None:
        """Forget the target's health, which closes its breaker."""
        self.states.pop(target_id, None)

    def views(self, target_ids: Iterable[str]) -> dict[str, TargetHealth]:
        return {target_id: self.get(target_id) for target_id in target_ids}

    async def sync(self, target_ids: Iterable[str] = ()) -> None:
        """Exchange state with the shared store; the in-process backend has none.

        target_ids names targets to refresh even if this process has not used them.
        """

    async def close(self) -> None:
        """Release connections."""


class MemoryHealth(HealthBackend):
    """Health kept in this process only: the embedded default without Redis."""
