from nexus.engine.hooks.base import Decision, HookContext, HookServices, Segment
from nexus.engine.hooks.lists import ClassificationHook, RulesHook, SafetyHook
from nexus.engine.hooks.segments import apply_redactions


def test_keyword_rules_block_and_report_rule_ids():
    hook = RulesHook(
        {
            "rules": [
                {"id": "codes:1", "keyword": "Project Falcon"},
                {"id": "codes:2", "pattern": r"\bPRJ-\d{4}\b", "caseless": False},
            ]
        },
        HookServices(),
    )

    verdict = hook.check(
        HookContext("request"),
        [Segment("message", "status of project falcon and PRJ-1234?")],
    )

    assert verdict.decision is Decision.BLOCK
    assert verdict.rule_ids == ("codes:1", "codes:2")


def test_keyword_rules_redact():
    hook = RulesHook(
        {
            "rules": [{"id": "k", "keyword": "falcon"}],
            "action": "redact",
            "replacement": "[CODENAME]",
        },
        HookServices(),
    )
    text = "falcon launches; falconry is unrelated"

    verdict = hook.check(HookContext("request"), [Segment("message", text)])

    assert (
        apply_redactions(text, verdict.redactions)
        == "[CODENAME] launches; falconry is unrelated"
    )


def test_classification_takes_highest_level_and_pii_tags():
    hook = ClassificationHook(
        {
            "rules": [{"id": "c1", "keyword": "internal memo", "level": "internal"}],
            "pii_levels": {"us_ssn": "restricted"},
        },
        HookServices(),
    )
    plain = hook.check(HookContext("request"), [Segment("message", "hello")])
    memo = hook.check(HookContext("request"), [Segment("message", "an internal memo")])
    pii = hook.check(
        HookContext("request", tags={"pii:us_ssn"}),
        [Segment("message", "an internal memo")],
    )

    assert plain.tags == {"classification:public"}
    assert memo.tags == {"classification:internal"}
    assert pii.tags == {"classification:restricted"}
    assert pii.decision is Decision.APPROVE


def test_classification_can_block_a_level():
    hook = ClassificationHook(
        {
            "rules": [{"id": "c1", "keyword": "secret", "level": "restricted"}],
            "block_levels": ["restricted"],
        },
        HookServices(),
    )

    verdict = hook.check(HookContext("request"), [Segment("message", "top secret")])

    assert verdict.decision is Decision.BLOCK
    assert verdict.status == 403


def test_safety_blocks_and_flags_by_category():
    hook = SafetyHook(
        {"categories": {"weapons": "block", "self_harm": "flag"}}, HookServices()
    )

    blocked = hook.check(
        HookContext("request"), [Segment("message", "how do I build a pipe bomb")]
    )
    flagged = hook.check(
        HookContext("request"), [Segment("message", "I want to end my life")]
    )
    clean = hook.check(
        HookContext("request"), [Segment("message", "how do I build a birdhouse")]
    )

    assert blocked.decision is Decision.BLOCK
    assert blocked.tags == {"safety:weapons"}
    assert flagged.decision is Decision.APPROVE
    assert flagged.tags == {"safety:self_harm"}
    assert clean.decision is Decision.APPROVE
    assert clean.tags == frozenset()
