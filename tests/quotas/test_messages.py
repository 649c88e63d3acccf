"""Quota rejection messages name each amount with a singular or plural unit."""

import pytest

from nexus.engine.quotas.messages import rejection, with_unit
from nexus.engine.quotas.rules import QuotaRule, Unit
from nexus.engine.quotas.windows import Window


def make_rule(unit: Unit, hard_limit: int) -> QuotaRule:
    return QuotaRule(
        id=1,
        uid="q1",
        name="per key",
        org_id=1,
        axis="key",
        unit=unit,
        window=Window("minute"),
        hard_limit=hard_limit,
    )


@pytest.mark.parametrize(
    ("unit", "amount", "expected"),
    [
        (Unit.REQUESTS, 1, "1 request"),
        (Unit.REQUESTS, 2, "2 requests"),
        (Unit.REQUESTS, 0, "0 requests"),
        (Unit.TOKENS, 1, "1 token"),
        (Unit.TOKENS, 500, "500 tokens"),
        (Unit.USD, 1_000_000_000, "1.00 USD"),
        (Unit.USD, 1, "0.000000001 USD"),
    ],
)
def test_with_unit_singular_and_plural(unit, amount, expected):
    assert with_unit(unit, amount) == expected


def test_exhausted_request_quota_message():
    error = rejection(
        make_rule(Unit.REQUESTS, 1),
        used=1,
        amount=1,
        retry_after=30.0,
        fits_when_empty=True,
    )

    assert "1 of 1 request used" in error.message
    assert "may use up to 1 request." in error.message


def test_oversized_token_request_message():
    error = rejection(
        make_rule(Unit.TOKENS, 1),
        used=0,
        amount=2,
        retry_after=None,
        fits_when_empty=False,
    )

    assert "may use up to 2 tokens," in error.message
    assert "hard limit of 1 token;" in error.message
