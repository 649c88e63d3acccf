"""Run the hooks of one stage in priority order and combine their decisions.

Hooks run one after another, lowest priority number first, and each sees the text
with the redactions of the hooks before it applied. A block wins over a redaction
and a redaction over an approval; after a block no further hook runs. A hook that
raises or passes its timeout counts as approving when it fails open and as
blocking when it fails closed; either way its record says so.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.errors import NexusError
from nexus.engine.hooks.base import (
    Decision,
    Hook,
    HookBlockedError,
    HookContext,
    HookError,
    HookFailedError,
    Redaction,
    Segment,
    Verdict,
)
from nexus.engine.hooks.segments import apply_redactions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookSpec:
    """One configured hook as the config snapshot carries it."""

    id: int
    name: str
    kind: str
    stage: str
    priority: int = 100
    timeout_ms: int = 1000
    fail_open: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    # None applies the hook to every organization.
    org_id: int | None = None


@dataclass
class HookRecord:
    """The audit record of one hook on one stage: never the matched text."""

    hook: str
    hook_id: int
    kind: str
    stage: str
    decision: str
    outcome: str = "ok"
    reason: str = ""
    rule_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def merge(self, other: "HookRecord") -> None:
        """Fold a later run of the same hook (another stream window) into this record."""
        if Decision.parse(other.decision) > Decision.parse(self.decision):
            self.decision, self.reason = other.decision, other.reason
        if other.outcome != "ok":
            self.outcome = other.outcome
        self.rule_ids = sorted(set(self.rule_ids) | set(other.rule_ids))
        self.tags = sorted(set(self.tags) | set(other.tags))
        self.duration_ms = round(self.duration_ms + other.duration_ms, 3)


@dataclass
class StageOutcome:
    """The combined result of one stage: decision, final texts, records and tags."""

    stage: str
    decision: Decision = Decision.APPROVE
    texts: list[str] = field(default_factory=list)
    records: list[HookRecord] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    redactions: list[Redaction] = field(default_factory=list)
    error: NexusError | None = None
    unscanned: bool = False

    @property
    def blocked(self) -> bool:
        return self.decision is Decision.BLOCK


@dataclass
class BoundHook:
    """A hook instance and the spec it was built from."""

    spec: HookSpec
    hook: Hook


class Pipeline:
    """The hooks that apply to one organization, grouped by stage."""

    def __init__(self, hooks: Sequence[BoundHook]) -> None:
        ordered = sorted(
            hooks, key=lambda bound: (bound.spec.priority, bound.spec.name)
        )
        self.stages: dict[str, list[BoundHook]] = {}
        for bound in ordered:
            self.stages.setdefault(bound.spec.stage, []).append(bound)

    def hooks(self, stage: str) -> list[BoundHook]:
        return self.stages.get(stage, [])

    def stream_window(self) -> int:
        """Return the characters a stream filter must hold back for the response hooks."""
        return max(
            (bound.hook.stream_window for bound in self.hooks("response")), default=0
        )

    async def run(
        self, stage: str, context: HookContext, segments: Sequence[Segment]
    ) -> StageOutcome:
        """Run the stage's hooks, awaiting those that wait on I/O."""
        run = _Run(stage, context, segments)
        for bound in self.hooks(stage):
            started = time.perf_counter()
            try:
                if bound.hook.is_async:
                    verdict = await asyncio.wait_for(
                        bound.hook.check_async(context, run.current()),
                        bound.spec.timeout_ms / 1000,
                    )
                else:
                    verdict = bound.hook.check(context, run.current())
            except TimeoutError:
                run.failed(
                    bound,
                    "timeout",
                    f"timed out after {bound.spec.timeout_ms} ms",
                    started,
                )
            except Exception as exc:
                run.failed(bound, "error", _describe(exc), started)
            else:
                run.record(bound, verdict, started)
            if run.outcome.blocked:
                break
        return run.finish()

    def run_sync(
        self, stage: str, context: HookContext, segments: Sequence[Segment]
    ) -> StageOutcome:
        """Run the stage's CPU-only hooks without awaiting; used by response filters.

        Every hook sees the same unredacted segments, so all redactions are offsets
        into them; a stream filter needs that to know where a match begins.
        """
        run = _Run(stage, context, segments, independent=True)
        for bound in self.hooks(stage):
            started = time.perf_counter()
            try:
                verdict = bound.hook.check(context, run.current())
            except Exception as exc:
                run.failed(bound, "error", _describe(exc), started)
            else:
                run.record(bound, verdict, started)
            if run.outcome.blocked:
                break
        return run.finish()

    async def close(self) -> None:
        for hooks in self.stages.values():
            for bound in hooks:
                await bound.hook.close()


def _describe(exc: Exception) -> str:
    # Messages of HookError are written by hooks without request text; other
    # exceptions may quote input, so only their type is kept.
    if isinstance(exc, HookError):
        return str(exc)
    return type(exc).__name__


class _Run:
    """The state of one stage run: the current texts and the outcome so far."""

    def __init__(
        self,
        stage: str,
        context: HookContext,
        segments: Sequence[Segment],
        *,
        independent: bool = False,
    ) -> None:
        self.context = context
        self.independent = independent
        self.segments = list(segments)
        if not context.original:
            context.original = self.segments
        self.texts = [segment.text for segment in self.segments]
        self.changed = False
        self.outcome = StageOutcome(stage=stage)

    def current(self) -> list[Segment]:
        if not self.changed:
            return self.segments
        return [
            dataclasses.replace(segment, text=text)
            for segment, text in zip(self.segments, self.texts, strict=True)
        ]

    def record(self, bound: BoundHook, verdict: Verdict, started: float) -> None:
        outcome = self.outcome
        spec = bound.spec
        record = HookRecord(
            hook=spec.name,
            hook_id=spec.id,
            kind=spec.kind,
            stage=outcome.stage,
            decision=verdict.decision.label,
            reason=verdict.reason,
            rule_ids=sorted(set(verdict.rule_ids)),
            tags=sorted(verdict.tags),
            duration_ms=_elapsed(started),
        )
        outcome.records.append(record)
        outcome.tags |= verdict.tags
        self.context.tags |= verdict.tags
        if verdict.decision is Decision.REDACT and verdict.redactions:
            self._redact(verdict.redactions)
        outcome.decision = max(outcome.decision, verdict.decision)
        if verdict.decision is Decision.BLOCK:
            reason = verdict.reason or "the content is not allowed"
            outcome.error = HookBlockedError(
                f"Blocked by the {spec.name!r} policy: {reason}",
                status=verdict.status,
                code=verdict.code,
                retry_after=verdict.retry_after,
            )

    def _redact(self, redactions: Sequence[Redaction]) -> None:
        self.outcome.redactions.extend(redactions)
        if self.independent:
            return
        by_segment: dict[int, list[Redaction]] = {}
        for redaction in redactions:
            by_segment.setdefault(redaction.segment, []).append(redaction)
        for index, items in by_segment.items():
            self.texts[index] = apply_redactions(self.texts[index], items)
        self.changed = True

    def failed(self, bound: BoundHook, kind: str, detail: str, started: float) -> None:
        spec = bound.spec
        logger.warning(
            "hook %s %s on the %s stage (%s); failing %s",
            spec.name,
            "timed out" if kind == "timeout" else "failed",
            self.outcome.stage,
            detail,
            "open" if spec.fail_open else "closed",
            extra={"request_id": self.context.request_id, "hook_id": spec.id},
        )
        decision = Decision.APPROVE if spec.fail_open else Decision.BLOCK
        self.outcome.records.append(
            HookRecord(
                hook=spec.name,
                hook_id=spec.id,
                kind=spec.kind,
                stage=self.outcome.stage,
                decision=decision.label,
                outcome=f"{kind}_fail_{'open' if spec.fail_open else 'closed'}",
                reason=detail,
                duration_ms=_elapsed(started),
            )
        )
        if spec.fail_open:
            self.outcome.unscanned = True
            return
        self.outcome.decision = Decision.BLOCK
        self.outcome.error = HookFailedError(
            f"The {spec.name!r} policy could not check the request ({detail}) "
            "and is set to fail closed, so the request was blocked."
        )

    def finish(self) -> StageOutcome:
        if self.independent and self.outcome.redactions:
            by_segment: dict[int, list[Redaction]] = {}
            for redaction in self.outcome.redactions:
                by_segment.setdefault(redaction.segment, []).append(redaction)
            for index, items in by_segment.items():
                self.texts[index] = apply_redactions(self.texts[index], items)
        self.outcome.texts = self.texts
        return self.outcome


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
