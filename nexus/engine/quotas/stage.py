"""The quota stage: reserve an estimate before the upstream call, settle after it.

on_request finds the rules that count the request and estimates its cost: prompt
tokens with a tokenizer, plus max_tokens or the organization's default for the
output. It reserves that on every counter in one backend call, and a counter over
its hard limit rejects the request with 429. on_complete settles every counter to what the request
actually used: provider-reported usage, or an estimate from the text produced when a
provider reported none; a request that failed before any output is charged nothing.
"""

import asyncio
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.call import Call
from nexus.engine.canonical import Usage
from nexus.engine.errors import ServiceUnavailableError
from nexus.engine.pricing import cost_nano
from nexus.engine.quotas import estimate
from nexus.engine.quotas.backend import (
    BackendUnavailableError,
    QuotaBackend,
    ReserveCounter,
    ReserveOutcome,
    SettleCounter,
)
from nexus.engine.quotas.messages import limit_headers, rejection
from nexus.engine.quotas.rules import OrgPolicy, QuotaConfig, QuotaRule, Subject, Unit
from nexus.engine.quotas.windows import GRACE_SECONDS, Slot
from nexus.engine.stages import Stage

logger = logging.getLogger(__name__)

# Settlements kept while the counter store is down, replayed when it returns.
MAX_DEFERRED = 10_000
# Seconds between outage summaries in the log.
OUTAGE_LOG_SECONDS = 60.0
# Pause before rebuilding counters, for requests between settlement and audit.
RECOVERY_GRACE_SECONDS = 0.05


@dataclass
class Charge:
    """One counter a request is charged on, and the amount reserved there."""

    rule: QuotaRule
    key: str
    slot: Slot
    # The estimate, the part of it the request needs for certain, and what the
    # store reserved (less than the estimate when only part of it fitted).
    estimate: int = 0
    floor: int = 0
    reserved: int = 0


@dataclass(frozen=True)
class SoftLimitCrossing:
    """A counter reached its soft limit for the first time in a window instance."""

    rule_id: int
    rule_uid: str
    rule_name: str
    org_id: int
    axis: str
    unit: str
    dimensions: dict[str, str]
    counter: str
    window: str
    window_start: float
    used: int
    soft_limit: int
    hard_limit: int | None
    request_id: str


@dataclass
class QuotaState:
    """Per-request state of the stage between on_request and on_complete."""

    org_id: int
    policy: OrgPolicy
    subject: Subject
    charges: list[Charge]
    prompt_tokens: int = 0
    output_tokens: int = 0
    # Whether the caller capped the output with max_tokens. Without a cap, the output
    # estimate is a default that may shrink to what is left under a hard limit.
    output_capped: bool = True
    # The reservation is in the store and must be settled.
    reserved: bool = False
    # "fail_open" when admitted uncounted because the store was down.
    outage: str = ""
    reservation: dict[str, int] = field(default_factory=dict)


class OutageLog:
    """Count requests served while the store is down; log a summary once a minute."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.logged_at = 0.0

    def record(self, kind: str) -> None:
        self.totals[kind] = self.totals.get(kind, 0) + 1
        self.pending[kind] = self.pending.get(kind, 0) + 1
        now = time.monotonic()
        if now - self.logged_at < OUTAGE_LOG_SECONDS:
            return
        summary = ", ".join(f"{name} {count}" for name, count in self.pending.items())
        logger.warning(
            "quota counters unavailable; requests since last report: %s", summary
        )
        self.pending.clear()
        self.logged_at = now


class QuotaStage(Stage):
    """Reserve and settle quota counters around every request that a rule counts."""

    name = "quotas"

    def __init__(
        self,
        config: Callable[[], QuotaConfig | None],
        backend: QuotaBackend,
        *,
        reservation_seconds: float,
        on_soft_limit: Callable[[SoftLimitCrossing], Awaitable[None]] | None = None,
        on_recovered: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.backend = backend
        self.reservation_seconds = reservation_seconds
        self.on_soft_limit = on_soft_limit
        self.on_recovered = on_recovered
        self.clock = clock
        # Counter keys known to exist in the store; others are sent with their seed.
        self.known: set[str] = set()
        self.deferred: deque[tuple[int, str, list[SettleCounter]]] = deque()
        self.outages = OutageLog()
        self.background: set[asyncio.Task] = set()
        # Set while the store is back but its counters are being rebuilt.
        self.recovering = False
        self.rebuilt = asyncio.Event()
        if hasattr(backend, "on_recovered"):
            backend.on_recovered = self._recovered

    async def on_request(self, call: Call, request: Any) -> None:
        config = self.config()
        if config is None or call.key is None or call.model is None:
            return None
        subject = subject_of(call)
        rules = config.matching(subject)
        if not rules:
            return None
        now = self.clock()
        state = QuotaState(
            org_id=subject.org_id,
            policy=config.policy(subject.org_id),
            subject=subject,
            charges=[charge_for(rule, subject, now) for rule in rules],
        )
        call.state[self.name] = state
        if self.recovering or not self.backend.available:
            return self._outage(call, state)

        await self._estimate(call, request, state)
        counters = [self._reserve_counter(charge, config) for charge in state.charges]
        try:
            outcome = await self.backend.reserve(
                state.org_id,
                call.request_id,
                counters,
                now,
                now + self.reservation_seconds,
            )
        except BackendUnavailableError:
            return self._outage(call, state)
        self._remember(counters)

        if not outcome.admitted:
            raise self._reject(call, state, outcome, now)
        for charge, amount in zip(state.charges, outcome.reserved, strict=True):
            charge.reserved = amount
        state.reserved = True
        call.response_headers.update(_remaining_headers(state, outcome))
        call.details[self.name] = {
            "admitted": True,
            "rules": [charge.rule.id for charge in state.charges],
            "estimate": state.reservation,
            "reserved": {
                str(charge.rule.id): charge.reserved for charge in state.charges
            },
        }
        return None

    async def on_complete(self, call: Call, request: Any) -> None:
        state = call.state.get(self.name)
        if not isinstance(state, QuotaState):
            return
        if not (state.reserved or state.outage):
            return
        if self.recovering:
            # Settling now could land before the counter's rebuild; this request's
            # audit event is stored only after on_complete, so it is not in the seed.
            await self.rebuilt.wait()
        estimated = await self._fill_usage(call, request, state)
        actual = {
            Unit.TOKENS: call.usage.input_tokens + call.usage.output_tokens,
            Unit.USD: call.cost_nano,
            Unit.REQUESTS: 1,
        }
        now = self.clock()
        plan = self._final_charges(call, state, now)
        charges = [charge for charge, _ in plan]
        counters = [
            self._settle_counter(
                charge,
                actual[charge.rule.unit] if counts else 0,
                now,
                check_soft=counts,
            )
            for charge, counts in plan
        ]
        details = call.details.setdefault(self.name, {})
        details["charged"] = {unit.value: amount for unit, amount in actual.items()}
        details["estimated"] = estimated

        try:
            outcome = await asyncio.shield(
                self.backend.settle(state.org_id, call.request_id, counters, now)
            )
        except BackendUnavailableError:
            self._defer(state.org_id, call.request_id, counters)
            details["settlement"] = "deferred"
            return
        self._remember(counters)
        crossed = [
            self._crossing(call, charge, used, now)
            for charge, used in zip(charges, outcome.crossed, strict=True)
            if used is not None
        ]
        if crossed:
            details["soft_limit_crossed"] = [item.rule_id for item in crossed]
        for crossing in crossed:
            logger.warning(
                "quota %s reached its soft limit",
                crossing.rule_uid,
                extra={"tenant_id": crossing.org_id, "request_id": call.request_id},
            )
            if self.on_soft_limit is not None:
                self._spawn(self.on_soft_limit(crossing))

    async def close(self) -> None:
        if self.background:
            await asyncio.wait(set(self.background), timeout=5)
        await self.backend.close()

    async def _estimate(self, call: Call, request: Any, state: QuotaState) -> None:
        units = {charge.rule.unit for charge in state.charges}
        if units & {Unit.TOKENS, Unit.USD}:
            upstream = call.model.upstream_model
            count = await estimate.prompt_tokens(upstream, request)
            state.prompt_tokens = count.tokens
            state.output_tokens, state.output_capped = estimate.output_allowance(
                request, state.policy.default_output_tokens
            )
        prices = call.model.prices
        full = Usage(
            input_tokens=state.prompt_tokens, output_tokens=state.output_tokens
        )
        prompt_only = Usage(input_tokens=state.prompt_tokens)
        amounts = {
            Unit.TOKENS: (
                state.prompt_tokens + state.output_tokens,
                state.prompt_tokens,
            ),
            Unit.USD: (cost_nano(full, prices), cost_nano(prompt_only, prices)),
            Unit.REQUESTS: (1, 1),
        }
        state.reservation = {
            unit.value: amount for unit, (amount, _) in amounts.items()
        }
        for charge in state.charges:
            charge.estimate, floor = amounts[charge.rule.unit]
            charge.floor = charge.estimate if state.output_capped else floor
            charge.reserved = charge.estimate

    def _reserve_counter(self, charge: Charge, config: QuotaConfig) -> ReserveCounter:
        return ReserveCounter(
            key=charge.key,
            bucket=charge.slot.bucket,
            oldest=charge.slot.oldest,
            ttl=charge.slot.ttl,
            amount=charge.estimate,
            hard=charge.rule.hard_limit,
            seed=None if charge.key in self.known else config.seeds.get(charge.key, ()),
            floor=charge.floor,
        )

    def _settle_counter(
        self, charge: Charge, actual: int, now: float, *, check_soft: bool = True
    ) -> SettleCounter:
        rule, reserved_slot = charge.rule, charge.slot
        # A calendar counter key names its period, so it keeps its reserved slot.
        current = rule.window.slot(now) if rule.window.sliding else reserved_slot
        ttl = current.ttl
        if not rule.window.sliding:
            ttl = max(1, math.ceil(reserved_slot.ends_at - now)) + GRACE_SECONDS
        config = self.config()
        seed = None
        if charge.key not in self.known and config is not None:
            seed = config.seeds.get(charge.key, ())
        return SettleCounter(
            key=charge.key,
            reserved_bucket=reserved_slot.bucket,
            bucket=current.bucket,
            oldest=current.oldest,
            ttl=ttl,
            reserved=charge.reserved,
            actual=actual,
            soft=rule.soft_limit if check_soft else None,
            marker=f"{charge.key}:soft:{current.instance}",
            marker_ttl=max(1, math.ceil(current.ends_at - now)) + 60,
            seed=seed,
        )

    def _final_charges(
        self, call: Call, state: QuotaState, now: float
    ) -> list[tuple[Charge, bool]]:
        """Return the counters to settle, each with whether the request counts there.

        After a failover to another model or connection, counters of the planned
        target that the serving target does not share give back their reservation,
        and the serving target's own counters are charged in full.
        """
        planned = [(charge, True) for charge in state.charges]
        if call.model is None or call.key is None:
            return planned
        subject = subject_of(call)
        config = self.config()
        if subject == state.subject or config is None:
            return planned
        reserved = {charge.key: charge for charge in state.charges}
        final = [charge_for(rule, subject, now) for rule in config.matching(subject)]
        final_keys = {charge.key for charge in final}
        return [(reserved.get(charge.key, charge), True) for charge in final] + [
            (charge, False) for charge in state.charges if charge.key not in final_keys
        ]

    async def _fill_usage(self, call: Call, request: Any, state: QuotaState) -> bool:
        """Estimate usage the provider did not report; return whether it did so.

        A request with no output (it failed before the first byte) keeps zero usage.
        For a response cut off early, the output is at least the tokens of the text
        produced, because some providers report output only when a stream ends.
        """
        usage = call.usage
        produced = _produced_text(call)
        if usage.reported and call.complete:
            return False
        if not usage.reported and call.ttfb_ms is None and not call.complete:
            return False
        upstream = call.model.upstream_model if call.model else ""
        output = (await estimate.count_texts(upstream, [produced])).tokens
        if usage.reported:
            if output <= usage.output_tokens:
                return False
            call.usage = dataclasses.replace(usage, output_tokens=output)
            return True
        prompt = state.prompt_tokens
        if not prompt:
            prompt = (await estimate.prompt_tokens(upstream, request)).tokens
        call.usage = dataclasses.replace(
            usage, input_tokens=prompt, output_tokens=output
        )
        return True

    def _reject(
        self, call: Call, state: QuotaState, outcome: ReserveOutcome, now: float
    ) -> Exception:
        charge = state.charges[outcome.rejected]
        rule = charge.rule
        used = outcome.used[outcome.rejected]
        retry_after: float | None = None
        fits_when_empty = (
            charge.estimate <= (rule.hard_limit or 0)
            if charge.floor >= charge.estimate
            else charge.floor < (rule.hard_limit or 0)
        )
        if fits_when_empty:
            if not rule.window.sliding:
                retry_after = charge.slot.ends_at - now
            elif outcome.drain_bucket >= 0:
                retry_after = rule.window.bucket_leaves_at(outcome.drain_bucket) - now
            else:
                retry_after = float(rule.window.seconds)
        call.details[self.name] = {
            "admitted": False,
            "rules": [item.rule.id for item in state.charges],
            "rejected": {
                "quota": rule.id,
                "axis": rule.axis,
                "unit": rule.unit.value,
                "used": used,
                "limit": rule.hard_limit,
                "requested": charge.estimate,
            },
        }
        logger.info(
            "quota %s rejected a request",
            rule.uid,
            extra={"tenant_id": state.org_id, "request_id": call.request_id},
        )
        return rejection(rule, used, charge.estimate, retry_after, fits_when_empty)

    def _outage(self, call: Call, state: QuotaState) -> None:
        mode = "fail_open" if state.policy.fail_open else "fail_closed"
        self.outages.record(mode)
        call.details[self.name] = {
            "outage": mode,
            "rules": [charge.rule.id for charge in state.charges],
        }
        if state.policy.fail_open:
            state.outage = mode
            return None
        error = ServiceUnavailableError(
            "Quota counters are unavailable and this organization rejects requests "
            "until they return; retry shortly.",
            code="quota_store_unavailable",
        )
        error.retry_after = 1.0
        raise error

    def _crossing(
        self, call: Call, charge: Charge, used: int, now: float
    ) -> SoftLimitCrossing:
        rule = charge.rule
        slot = rule.window.slot(now) if rule.window.sliding else charge.slot
        start = (
            slot.instance * rule.window.seconds
            if rule.window.sliding
            else float(slot.instance)
        )
        return SoftLimitCrossing(
            rule_id=rule.id,
            rule_uid=rule.uid,
            rule_name=rule.name,
            org_id=rule.org_id,
            axis=rule.axis,
            unit=rule.unit.value,
            dimensions=rule.dimension_values(subject_of(call)),
            counter=charge.key,
            window=rule.window.name,
            window_start=float(start),
            used=used,
            soft_limit=rule.soft_limit or 0,
            hard_limit=rule.hard_limit,
            request_id=call.request_id,
        )

    def _remember(self, counters: list) -> None:
        if len(self.known) > 200_000:
            self.known.clear()
        self.known.update(counter.key for counter in counters)

    def _defer(self, org_id: int, request_id: str, counters: list) -> None:
        if len(self.deferred) >= MAX_DEFERRED:
            self.outages.record("settlement_dropped")
            return
        self.outages.record("settlement_deferred")
        self.deferred.append((org_id, request_id, counters))

    async def _recovered(self) -> None:
        """Rebuild counters after the store returns, then replay deferred settlements.

        The store may have lost its data. The app's recovery step stores pending
        audit events and reloads the snapshot, whose seeds then hold everything
        audited, including the requests settled during the outage. A counter the
        store lost is rebuilt from its seed, so those settlements are skipped on it;
        a counter the store kept gets them replayed. Meanwhile new requests take the
        outage path and settlements wait for the rebuild.
        """
        self.recovering = True
        self.rebuilt.clear()
        try:
            # Let requests that just settled submit their audit events.
            await asyncio.sleep(RECOVERY_GRACE_SECONDS)
            covered = len(self.deferred)
            if self.on_recovered is not None:
                try:
                    await self.on_recovered()
                except Exception:
                    logger.exception("quota recovery step failed; seeds may be stale")
            self.known.clear()
            keys = {c.key for _, _, counters in self.deferred for c in counters}
            present = await self.backend.existing(sorted(keys))
            index = 0
            while self.deferred:
                org_id, request_id, counters = self.deferred[0]
                replay = [
                    self._replayed(
                        counter, index < covered and counter.key not in present
                    )
                    for counter in counters
                ]
                await self.backend.settle(org_id, request_id, replay, self.clock())
                self._remember(replay)
                self.deferred.popleft()
                index += 1
        finally:
            self.recovering = False
            self.rebuilt.set()

    def _replayed(self, counter: SettleCounter, covered: bool) -> SettleCounter:
        config = self.config()
        seed = config.seeds.get(counter.key, ()) if config is not None else ()
        if covered:
            return dataclasses.replace(counter, reserved=0, actual=0, seed=seed)
        return dataclasses.replace(counter, seed=seed)

    def _spawn(self, work: Awaitable) -> None:
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "quota background step failed: %r",
                task.exception(),
                exc_info=task.exception(),
            )


def subject_of(call: Call) -> Subject:
    """Return what a request is charged to: its key, project, connection and model."""
    key = call.key
    return Subject(
        org_id=key.org_id,
        key_id=key.id,
        project_id=key.project_id,
        connection_id=call.connection.id if call.connection else None,
        model=call.model.name if call.model else "",
    )


def charge_for(rule: QuotaRule, subject: Subject, now: float) -> Charge:
    slot = rule.window.slot(now)
    return Charge(rule, rule.counter_key(rule.dimension_values(subject), slot), slot)


def _produced_text(call: Call) -> str:
    chunks = call.state.get("chunks")
    if isinstance(chunks, list):
        return estimate.produced_text(chunks)
    # A stream passed through in the provider's own format keeps no chunks.
    observer = call.state.get("native_observer")
    if hasattr(observer, "produced_text"):
        return observer.produced_text()
    result = call.state.get("result")
    body = getattr(result, "body", None)
    if isinstance(body, dict):
        return estimate.result_text(body)
    return ""


def _remaining_headers(state: QuotaState, outcome: ReserveOutcome) -> dict[str, str]:
    entries = [
        (charge.rule, charge.rule.hard_limit - used - charge.reserved)
        for charge, used in zip(state.charges, outcome.used, strict=True)
        if charge.rule.hard_limit is not None
    ]
    return limit_headers(entries)
