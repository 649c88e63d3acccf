"""Rule-list hooks: keyword and regex lists, data classification, content safety.

All three compile their rules into one PatternSet, so a text is scanned once per
hook however many rules the lists hold.
"""

import re
from collections.abc import Sequence
from typing import Any

from nexus.engine.hooks.base import (
    Decision,
    Hook,
    HookContext,
    Redaction,
    Segment,
    Verdict,
)
from nexus.engine.hooks.options import Option, OptionsSpec
from nexus.engine.hooks.patterns import PatternRule, PatternSet, compile_regex

LEVELS = ("public", "internal", "confidential", "restricted")


def rule_pattern(rule: dict[str, Any]) -> PatternRule:
    """Return the pattern of a rule dict {id, keyword | pattern, caseless}."""
    rule_id = str(rule.get("id") or "")
    caseless = bool(rule.get("caseless", True))
    if isinstance(rule.get("keyword"), str) and rule["keyword"].strip():
        keyword = rule["keyword"].strip()
        regex = re.escape(keyword)
        if re.match(r"\w", keyword, re.ASCII):
            regex = r"\b" + regex
        if re.search(r"\w$", keyword, re.ASCII):
            regex += r"\b"
        return PatternRule(rule_id, regex, caseless)
    if isinstance(rule.get("pattern"), str) and rule["pattern"]:
        return PatternRule(rule_id, rule["pattern"], caseless)
    raise ValueError(f"rule {rule_id or rule!r} needs a keyword or a pattern.")


def check_rules(value: list) -> None:
    """Check a list of rule dicts: ids, a keyword or a valid pattern each."""
    for rule in value:
        if not isinstance(rule, dict):
            raise ValueError(f"each rule must be an object, got {rule!r}.")
        unknown = set(rule) - {"id", "keyword", "pattern", "caseless", "level"}
        if unknown:
            raise ValueError(
                f"rule {rule.get('id')!r} has unknown fields {sorted(unknown)}."
            )
        if not isinstance(rule.get("id"), str) or not rule["id"]:
            raise ValueError(f"rule {rule!r} needs a string id.")
        if "level" in rule and rule["level"] not in LEVELS:
            raise ValueError(
                f"rule {rule['id']!r} has the level {rule['level']!r}; use one of {LEVELS}."
            )
        try:
            compile_regex(rule_pattern(rule))
        except re.error as exc:
            raise ValueError(
                f"rule {rule['id']!r} has an invalid pattern: {exc}."
            ) from None


def _matches(
    patterns: PatternSet, segments: Sequence[Segment]
) -> list[tuple[int, int, int, int]]:
    """Return (segment, rule, start, end) for every match in every segment."""
    return [
        (index, match.rule, match.start, match.end)
        for index, segment in enumerate(segments)
        for match in patterns.scan(segment.text)
    ]


class RulesHook(Hook):
    """Block, redact or flag text that matches keyword or regex rule lists."""

    kind = "rules"
    label = "Keyword and regex lists"
    stream_window = 128
    options = OptionsSpec(
        {
            "lists": Option("list", [], help="Names of rule lists to apply."),
            "rules": Option("list", [], check=check_rules, help="Inline rules."),
            "action": Option("str", "block", choices=("block", "redact", "flag")),
            "replacement": Option(
                "str", "[REDACTED]", help="Text that replaces a match."
            ),
        }
    )

    def __init__(self, config, services) -> None:
        super().__init__(config, services)
        self.rules = list(self.config["rules"])
        self.patterns = PatternSet([rule_pattern(rule) for rule in self.rules])

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        found = _matches(self.patterns, segments)
        if not found:
            return Verdict()
        rule_ids = tuple(sorted({self.rules[rule]["id"] for _, rule, _, _ in found}))
        action = self.config["action"]
        reason = f"matched {len(rule_ids)} rule(s)."
        if action == "block":
            return Verdict(Decision.BLOCK, reason, rule_ids, code="policy_violation")
        if action == "flag":
            return Verdict(Decision.APPROVE, reason, rule_ids)
        replacement = self.config["replacement"]
        redactions = tuple(
            Redaction(index, start, end, replacement, self.rules[rule]["id"])
            for index, rule, start, end in found
        )
        return Verdict(Decision.REDACT, reason, rule_ids, redactions=redactions)


class ClassificationHook(Hook):
    """Tag the request with a data classification level from rules and PII tags.

    The highest level any rule reaches wins. Tags read by routing and data
    residency look like `classification:confidential`.
    """

    kind = "classification"
    label = "Data classification"
    options = OptionsSpec(
        {
            "rules": Option(
                "list", [], check=check_rules, help="Rules with a level each."
            ),
            "lists": Option("dict", {}, help="Rule list name to level."),
            "pii_levels": Option(
                "dict", {}, help="PII entity (as tagged by a pii hook) to level."
            ),
            "default": Option("str", "public", choices=LEVELS),
            "block_levels": Option("list", [], choices=LEVELS),
        }
    )

    def __init__(self, config, services) -> None:
        super().__init__(config, services)
        for entity, level in self.config["pii_levels"].items():
            if level not in LEVELS:
                raise ValueError(f"pii_levels[{entity!r}] must be one of {LEVELS}.")
        for name, level in self.config["lists"].items():
            if level not in LEVELS:
                raise ValueError(f"lists[{name!r}] must be one of {LEVELS}.")
        self.rules = [
            rule for rule in self.config["rules"] if rule.get("level") in LEVELS
        ]
        self.patterns = PatternSet([rule_pattern(rule) for rule in self.rules])

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        level = LEVELS.index(self.config["default"])
        rule_ids = set()
        for _, rule, _, _ in _matches(self.patterns, segments):
            rule_ids.add(self.rules[rule]["id"])
            level = max(level, LEVELS.index(self.rules[rule]["level"]))
        for entity, entity_level in self.config["pii_levels"].items():
            if f"pii:{entity}" in context.tags:
                rule_ids.add(f"pii.{entity}")
                level = max(level, LEVELS.index(entity_level))
        name = LEVELS[level]
        tags = frozenset({f"classification:{name}"})
        if name in self.config["block_levels"]:
            return Verdict(
                Decision.BLOCK,
                f"data classified {name} may not be sent.",
                tuple(sorted(rule_ids)),
                tags,
                status=403,
                code="classification_blocked",
            )
        return Verdict(
            Decision.APPROVE, f"classified {name}.", tuple(sorted(rule_ids)), tags
        )


def classification_of(tags: set[str] | frozenset[str]) -> str:
    """Return the highest classification level among tags, or an empty string."""
    found = [tag.split(":", 1)[1] for tag in tags if tag.startswith("classification:")]
    known = [level for level in found if level in LEVELS]
    return max(known, key=LEVELS.index) if known else ""


# Phrase lexicons per category. They catch explicit requests, not paraphrases; a
# deployment that needs a model-based classifier sends text to one with a webhook hook.
SAFETY_LEXICON: dict[str, tuple[str, ...]] = {
    "violence": (
        r"\b(?:how to|help me|ways to) (?:kill|murder|hurt|torture) (?:a |my |the )?\w+",
        r"\bi (?:will|am going to|want to) (?:kill|murder|shoot|stab) (?:you|him|her|them)\b",
    ),
    "weapons": (
        r"\b(?:build|make|assemble) (?:a |an )?(?:bomb|pipe bomb|explosive device|ghost gun)\b",
        r"\buntraceable (?:gun|firearm|weapon)s?\b",
    ),
    "self_harm": (
        r"\b(?:kill|hurt|harm) myself\b",
        r"\b(?:end|take) my (?:own )?life\b",
        r"\bsuicide (?:method|methods|note)\b",
    ),
    "illegal_drugs": (
        r"\b(?:synthesi[sz]e|cook|make|produce) (?:meth|methamphetamine|fentanyl|heroin)\b",
    ),
    "malware": (
        r"\b(?:write|create|build) (?:a |an |some )?(?:ransomware|keylogger|botnet|computer virus)\b",
        r"\b(?:launch|run) (?:a )?ddos attack\b",
    ),
}


def _check_categories(value: dict) -> None:
    for category, action in value.items():
        if category not in SAFETY_LEXICON:
            raise ValueError(
                f"unknown category {category!r}; known: {', '.join(sorted(SAFETY_LEXICON))}."
            )
        if action not in ("block", "flag"):
            raise ValueError(
                f"category {category!r} must be block or flag, got {action!r}."
            )


class SafetyHook(Hook):
    """Flag or block content-safety categories found by phrase lexicons."""

    kind = "safety"
    label = "Content safety"
    stream_window = 128
    options = OptionsSpec(
        {
            "categories": Option(
                "dict",
                {name: "block" for name in SAFETY_LEXICON},
                check=_check_categories,
                help="Category to action (block or flag).",
            ),
        }
    )

    def __init__(self, config, services) -> None:
        super().__init__(config, services)
        self.categories = []
        rules = []
        for category in self.config["categories"]:
            for pattern in SAFETY_LEXICON[category]:
                rules.append(PatternRule(f"safety.{category}", pattern, caseless=True))
                self.categories.append(category)
        self.patterns = PatternSet(rules)

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        found = {
            self.categories[rule] for _, rule, _, _ in _matches(self.patterns, segments)
        }
        if not found:
            return Verdict()
        names = sorted(found)
        tags = frozenset(f"safety:{name}" for name in names)
        rule_ids = tuple(f"safety.{name}" for name in names)
        blocking = [
            name for name in names if self.config["categories"][name] == "block"
        ]
        if blocking:
            return Verdict(
                Decision.BLOCK,
                f"content-safety category {', '.join(blocking)}.",
                rule_ids,
                tags,
                code="content_safety",
            )
        return Verdict(Decision.APPROVE, f"flagged {', '.join(names)}.", rule_ids, tags)
