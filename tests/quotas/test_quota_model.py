"""Quota definitions are validated before they reach the gateways."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.quotas.models import Quota
from nexus.engine.quotas.rules import Unit
from tests.support.factories import make_org, make_project, make_tenant

pytestmark = pytest.mark.django_db


def quota(org, **fields) -> Quota:
    fields.setdefault("name", "q")
    fields.setdefault("unit", "tokens")
    fields.setdefault("window", "calendar_month")
    return Quota(organization=org, **fields)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "hard_limit"),
        ({"hard_limit": Decimal(0)}, "hard_limit"),
        ({"hard_limit": Decimal("10.5")}, "hard_limit"),
        ({"hard_limit": Decimal(10), "soft_limit": Decimal(10)}, "soft_limit"),
        ({"unit": "usd", "hard_limit": Decimal(10_000_000)}, "hard_limit"),
        ({"hard_limit": Decimal(10), "timezone": "Nowhere/City"}, "timezone"),
        ({"hard_limit": Decimal(10), "window_size": 2}, "window_size"),
        (
            {"hard_limit": Decimal(10), "window": "day", "window_size": 90},
            "window_size",
        ),
    ],
)
def test_invalid_quota_is_rejected(fields, field):
    with pytest.raises(ValidationError) as caught:
        quota(make_org(), **fields).full_clean()

    assert field in caught.value.message_dict


def test_scope_rows_must_belong_to_the_organization():
    org = make_org()
    other = make_org()
    row = quota(
        org,
        hard_limit=Decimal(10),
        project=make_project(other),
        key=make_tenant(org=other).key_row,
    )

    with pytest.raises(ValidationError) as caught:
        row.full_clean()

    assert set(caught.value.message_dict) >= {"project", "key"}


def test_usd_limits_become_nano_usd():
    row = quota(
        make_org(),
        unit="usd",
        hard_limit=Decimal("1.25"),
        soft_limit=Decimal("0.000000001"),
        window="day",
        window_size=30,
    )
    row.full_clean()
    row.save()

    rule = row.to_rule()

    assert rule.unit == Unit.USD
    assert rule.hard_limit == 1_250_000_000
    assert rule.soft_limit == 1
    assert rule.window.seconds == 30 * 86400
    assert rule.uid == row.uid.hex[:16]
