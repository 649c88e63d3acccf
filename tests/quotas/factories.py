"""Quota rows for tests."""

from decimal import Decimal

from apps.quotas.models import Quota, QuotaSettings
from apps.quotas.services import save_quota
from apps.tenancy.models import Organization
from tests.support.factories import unique


def make_quota(organization: Organization, **fields) -> Quota:
    fields.setdefault("name", unique("quota"))
    fields.setdefault("axis", "key")
    fields.setdefault("unit", "tokens")
    fields.setdefault("window", "calendar_month")
    for name in ("soft_limit", "hard_limit"):
        if fields.get(name) is not None:
            fields[name] = Decimal(str(fields[name]))
    return save_quota(Quota(organization=organization, **fields))


def make_settings(organization: Organization, **fields) -> QuotaSettings:
    row, _ = QuotaSettings.objects.update_or_create(
        organization=organization, defaults=fields
    )
    return row
