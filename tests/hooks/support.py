"""Test hooks with scripted behaviour, for pipeline and gateway tests."""

import asyncio

from nexus.engine.hooks.base import (
    Decision,
    Hook,
    HookError,
    HookServices,
    Redaction,
    Verdict,
)
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline


class ScriptedHook(Hook):
    """Return a fixed verdict, raise, or sleep; records the texts it saw."""

    kind = "scripted"
    is_async = True

    def __init__(self, verdict=None, *, error=False, sleep=0.0, redact=None):
        self.verdict = verdict or Verdict()
        self.error = error
        self.sleep = sleep
        self.redact = redact
        self.seen = []

    async def check_async(self, context, segments):
        self.seen.append([segment.text for segment in segments])
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if self.error:
            raise HookError("scripted failure")
        if self.redact:
            redactions = []
            for index, segment in enumerate(segments):
                start = segment.text.find(self.redact)
                if start >= 0:
                    redactions.append(
                        Redaction(
                            index, start, start + len(self.redact), "[X]", "scripted"
                        )
                    )
            return Verdict(
                Decision.REDACT, "scripted", ("scripted",), redactions=tuple(redactions)
            )
        return self.verdict


def pipeline_of(*hooks, stage="request"):
    bound = []
    for index, entry in enumerate(hooks):
        hook, options = entry if isinstance(entry, tuple) else (entry, {})
        spec = HookSpec(
            id=index + 1,
            name=options.get("name", f"hook{index + 1}"),
            kind="scripted",
            stage=stage,
            priority=options.get("priority", index),
            timeout_ms=options.get("timeout_ms", 200),
            fail_open=options.get("fail_open", False),
        )
        bound.append(BoundHook(spec, hook))
    return Pipeline(bound)


SERVICES = HookServices()


def flush_compliance(gateway) -> None:
    """Wait until the gateway's compliance writer stored every queued record."""
    gateway.flush_audit()
    for stage in gateway.runtime.stages:
        if stage.name == "controls":
            assert stage.writer.flush(15), "compliance writer did not drain"
