import pytest

from nexus.engine.hooks.base import Decision, HookContext, HookServices, Segment
from nexus.engine.hooks.pii import PiiHook
from nexus.engine.hooks.segments import apply_redactions

ALL = ["email", "phone", "us_ssn", "card", "iban", "ip", "secret", "es_dni", "br_cpf"]


@pytest.fixture
def hook():
    return PiiHook({"entities": ALL}, HookServices())


def redact(hook, text):
    verdict = hook.check(HookContext("request"), [Segment("message", text)])
    return verdict, apply_redactions(text, verdict.redactions)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("write to jane.placeholder@example.test today", "[EMAIL]"),
        ("ssn 078-05-1120", "[SSN]"),
        ("ssn 123-45-6789", "[SSN]"),
        ("card 4111 1111 1111 1111", "[CARD]"),
        ("card 5500-0000-0000-0004", "[CARD]"),
        ("iban DE89 3704 0044 0532 0130 00", "[IBAN]"),
        ("call (415) 555-2671", "[PHONE]"),
        ("call +44 20 7946 0958", "[PHONE]"),
        ("host 10.1.2.3 is down", "[IP]"),
        ("host 2001:db8::1 is down", "[IP]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx", "[SECRET]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
        ("dni 12345678Z", "[NATIONAL_ID]"),
        ("cpf 390.533.447-05", "[NATIONAL_ID]"),
    ],
)
def test_entity_is_redacted(hook, text, label):
    verdict, output = redact(hook, text)

    assert verdict.decision is Decision.REDACT
    assert label in output


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",
        "ssn 000-12-3456",
        "order 12345678 shipped",
        "date 2024-01-15 and version 1.2.3",
        "iban DE00 3704 0044 0532 0130 00",
        "std::vector and a::b",
        "999.1.1.1 is not an address",
    ],
)
def test_invalid_value_is_left_alone(hook, text):
    verdict, output = redact(hook, text)

    assert verdict.decision is Decision.APPROVE
    assert output == text


def test_card_is_not_also_a_phone(hook):
    verdict, output = redact(hook, "pay with 4111111111111111 now")

    assert output == "pay with [CARD] now"
    assert verdict.rule_ids == ("pii.card",)


def test_reason_and_rule_ids_name_entities_not_values(hook):
    verdict, _ = redact(hook, "mail jane@example.test ssn 078-05-1120")

    assert "jane" not in verdict.reason
    assert "078" not in verdict.reason
    assert verdict.rule_ids == ("pii.email", "pii.us_ssn")
    assert verdict.tags == {"pii:email", "pii:us_ssn"}


def test_block_entities_block_instead_of_redacting():
    hook = PiiHook({"block_entities": ["secret"]}, HookServices())

    verdict, _ = redact(hook, "token ghp_" + "a" * 36)

    assert verdict.decision is Decision.BLOCK
    assert verdict.code == "pii_detected"
