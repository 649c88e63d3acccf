import random

import pytest

from nexus.engine.hooks.patterns import PatternRule, PatternSet, available_engines

RULES = [
    PatternRule(
        "email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    ),
    PatternRule("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
    PatternRule("lookbehind", r"(?<=x)abc"),
    PatternRule("keyword", r"\bsecret project\b", caseless=True),
    PatternRule("backreference", r"(ab)\1"),
    PatternRule("unicode", r"größe"),
]


@pytest.mark.skipif(
    "hyperscan" not in available_engines(), reason="hyperscan is not installed"
)
def test_engines_agree_on_random_text():
    fast = PatternSet(RULES, engine="hyperscan")
    plain = PatternSet(RULES, engine="re")
    alphabet = "ab x@.c1-é SECRET project 0123456789ß"
    extras = [
        "",
        " jane@ex.com",
        "xabc",
        "abab",
        "123-45-6789",
        "Secret Project",
        "die größe",
    ]
    generator = random.Random(7)

    for _ in range(2000):
        text = "".join(
            generator.choice(alphabet) for _ in range(generator.randint(0, 60))
        )
        text += generator.choice(extras)

        assert fast.scan(text) == plain.scan(text), text


@pytest.mark.skipif(
    "hyperscan" not in available_engines(), reason="hyperscan is not installed"
)
def test_unsupported_constructs_become_prefilters():
    patterns = PatternSet(RULES, engine="hyperscan")

    assert patterns.engine == "hyperscan"
    assert {RULES[index].id for index in patterns.prefiltered} == {
        "lookbehind",
        "backreference",
    }


def test_offsets_are_string_indices_after_non_ascii_text():
    patterns = PatternSet([PatternRule("ssn", r"\b\d{3}-\d{2}-\d{4}\b")])
    text = "Größe ✓ 078-05-1120"

    (match,) = patterns.scan(text)

    assert text[match.start : match.end] == "078-05-1120"


def test_pattern_matching_empty_string_is_rejected():
    with pytest.raises(ValueError, match="empty string"):
        PatternSet([PatternRule("empty", r"a*")])


def test_no_rules_scan_nothing():
    assert PatternSet([]).scan("anything") == []
