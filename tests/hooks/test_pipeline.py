from nexus.engine.hooks.base import (
    Decision,
    HookContext,
    HookFailedError,
    Segment,
    Verdict,
)
from nexus.engine.hooks.pii import PiiHook
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline
from tests.hooks.support import SERVICES, ScriptedHook, pipeline_of

SEGMENTS = [Segment("message", "my mail is jane@example.test and the word banana")]


def context():
    return HookContext("request", request_id="req_test")


async def test_hooks_run_in_priority_order_on_redacted_text():
    first = ScriptedHook(redact="banana")
    second = ScriptedHook()
    pipeline = pipeline_of((second, {"priority": 20}), (first, {"priority": 10}))

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert first.seen == [[SEGMENTS[0].text]]
    assert second.seen == [["my mail is jane@example.test and the word [X]"]]
    assert [record.hook for record in outcome.records] == ["hook2", "hook1"]


async def test_block_wins_and_stops_later_hooks():
    blocker = ScriptedHook(Verdict(Decision.BLOCK, "no", ("r1",)))
    redactor = ScriptedHook(redact="banana")
    later = ScriptedHook()
    pipeline = pipeline_of(redactor, blocker, later)

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert outcome.decision is Decision.BLOCK
    assert outcome.error.status == 400
    assert later.seen == []
    assert [record.decision for record in outcome.records] == ["redact", "block"]


async def test_redact_beats_approve():
    pipeline = pipeline_of(
        ScriptedHook(), ScriptedHook(redact="banana"), ScriptedHook()
    )

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert outcome.decision is Decision.REDACT
    assert outcome.texts == ["my mail is jane@example.test and the word [X]"]


async def test_failing_hook_fails_closed_by_default():
    pipeline = pipeline_of(ScriptedHook(error=True))

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert outcome.decision is Decision.BLOCK
    assert isinstance(outcome.error, HookFailedError)
    assert outcome.error.status == 503
    assert outcome.records[0].outcome == "error_fail_closed"
    assert outcome.records[0].reason == "scripted failure"


async def test_failing_hook_fails_open_when_configured():
    pipeline = pipeline_of((ScriptedHook(error=True), {"fail_open": True}))

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert outcome.decision is Decision.APPROVE
    assert outcome.error is None
    assert outcome.unscanned
    assert outcome.records[0].outcome == "error_fail_open"


async def test_slow_hook_times_out_closed():
    pipeline = pipeline_of((ScriptedHook(sleep=1.0), {"timeout_ms": 50}))

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert outcome.blocked
    assert outcome.records[0].outcome == "timeout_fail_closed"
    assert outcome.records[0].duration_ms < 900


async def test_slow_hook_times_out_open():
    pipeline = pipeline_of(
        (ScriptedHook(sleep=1.0), {"timeout_ms": 50, "fail_open": True})
    )

    outcome = await pipeline.run("request", context(), SEGMENTS)

    assert not outcome.blocked
    assert outcome.records[0].outcome == "timeout_fail_open"


async def test_tags_reach_context_for_later_hooks():
    spec = HookSpec(id=1, name="pii", kind="pii", stage="request")
    pipeline = Pipeline([BoundHook(spec, PiiHook({}, SERVICES))])
    ctx = context()

    outcome = await pipeline.run("request", ctx, SEGMENTS)

    assert "pii:email" in outcome.tags
    assert "pii:email" in ctx.tags
    assert outcome.texts[0] == "my mail is [EMAIL] and the word banana"


def test_records_never_hold_matched_values():
    spec = HookSpec(id=1, name="pii", kind="pii", stage="response")
    pipeline = Pipeline([BoundHook(spec, PiiHook({}, SERVICES))])

    outcome = pipeline.run_sync("response", context(), SEGMENTS)

    assert "jane" not in str(outcome.records[0].to_dict())
