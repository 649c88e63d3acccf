"""Read queries of quotas: stored usage per counter, live usage, settings and roll-ups."""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import Trunc

from apps.audit.models import AuditEvent
from apps.providers.models import ProviderConnection
from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup
from apps.tenancy.models import Organization
from nexus.engine.quotas.rules import QuotaRule, Unit, parse_counter_key
from nexus.engine.quotas.windows import Slot

logger = logging.getLogger(__name__)

# Sliding windows shorter than this are not seeded from the database: what they
# would restore leaves the window within the hour.
MIN_SEEDED_SECONDS = 3600

# Audit columns holding each axis dimension.
_COLUMNS = {
    "project": "project_id",
    "key": "key_id",
    "provider": "provider",
    "model": "model",
}


@dataclass(frozen=True)
class CounterUsage:
    """One counter of a quota: whose usage it holds, and how much is left."""

    dimensions: dict[str, str]
    used: int
    hard_limit: int | None
    soft_limit: int | None

    @property
    def remaining(self) -> int | None:
        if self.hard_limit is None:
            return None
        return max(0, self.hard_limit - self.used)


def list_quotas(organization: Organization | None = None) -> QuerySet[Quota]:
    """Return quotas, of one organization when given."""
    qs = Quota.objects.select_related("organization", "project", "key", "provider")
    if organization is not None:
        qs = qs.filter(organization=organization)
    return qs


def get_quota_settings(organization: Organization) -> QuotaSettings:
    """Return the organization's quota settings, unsaved defaults when it has none."""
    found = QuotaSettings.objects.filter(organization=organization).first()
    return found or QuotaSettings(organization=organization)


def list_alerts(organization: Organization | None = None) -> QuerySet[QuotaAlert]:
    qs = QuotaAlert.objects.all()
    if organization is not None:
        qs = qs.filter(organization=organization)
    return qs


def list_rollups(organization: Organization) -> QuerySet[UsageRollup]:
    return UsageRollup.objects.filter(organization=organization)


def stored_usage(
    rule: QuotaRule, slot: Slot, *, minimum_seconds: int = MIN_SEEDED_SECONDS
) -> dict[str, tuple[tuple[int, int], ...]]:
    """Return the audited usage of a rule's current window, per counter key.

    Each value lists (bucket, amount) pairs: one pair per period for calendar
    windows, one per bucket for sliding windows. These seed counters that the
    counter store does not hold.
    """
    window = rule.window
    if window.sliding and window.seconds < minimum_seconds:
        return {}
    if window.sliding:
        start = slot.oldest * window.bucket_seconds
    else:
        start = slot.bucket
    rows = _window_rows(rule, start)
    connection_ids = _connection_ids() if "provider" in rule.dimensions else {}
    usage: dict[str, dict[int, int]] = defaultdict(dict)
    for row in rows:
        values = _row_values(rule, row, connection_ids)
        if values is None or not row["amount"]:
            continue
        bucket = slot.bucket
        if window.sliding:
            bucket = int(row["moment"].timestamp() // window.bucket_seconds)
        buckets = usage[rule.counter_key(values, slot)]
        buckets[bucket] = buckets.get(bucket, 0) + int(row["amount"])
    return {key: tuple(sorted(buckets.items())) for key, buckets in usage.items()}


def _window_rows(rule: QuotaRule, start: float):
    qs = AuditEvent.objects.filter(
        organization_id=rule.org_id,
        created_at__gte=datetime.fromtimestamp(start, UTC),
    )
    if rule.project_id is not None:
        qs = qs.filter(project_id=rule.project_id)
    if rule.key_id is not None:
        qs = qs.filter(key_id=rule.key_id)
    if rule.connection_id is not None:
        name = (
            ProviderConnection.objects.filter(pk=rule.connection_id)
            .values_list("name", flat=True)
            .first()
        )
        qs = qs.filter(provider=name or "")
    if rule.model:
        qs = qs.filter(model=rule.model)
    if rule.unit == Unit.REQUESTS:
        qs = qs.filter(details__quotas__admitted=True)
    columns = [_COLUMNS[name] for name in rule.dimensions]
    if rule.window.sliding:
        qs = qs.annotate(moment=Trunc("created_at", _trunc_kind(rule)))
        columns.append("moment")
    return qs.values(*columns).annotate(amount=_amount(rule.unit)).order_by()


def _trunc_kind(rule: QuotaRule) -> str:
    size = rule.window.bucket_seconds
    if size % 3600 == 0:
        return "hour"
    if size % 60 == 0:
        return "minute"
    return "second"


def _amount(unit: Unit):
    if unit == Unit.TOKENS:
        return Sum(F("input_tokens") + F("output_tokens"))
    if unit == Unit.USD:
        return Sum("cost_nano_usd")
    return Count("id")


def _connection_ids() -> dict[str, int]:
    return dict(ProviderConnection.objects.values_list("name", "id"))


def _row_values(
    rule: QuotaRule, row: dict, connection_ids: dict[str, int]
) -> dict[str, str] | None:
    values = {}
    for name in rule.dimensions:
        value = row[_COLUMNS[name]]
        if name == "provider":
            value = connection_ids.get(value)
        if value is None or value == "":
            return None
        values[name] = str(value)
    return values


def list_quota_usage(quota: Quota, now: float | None = None) -> list[CounterUsage]:
    """Return the current usage of each of a quota's counters, largest first.

    With Redis the counters are read live, including reservations of requests in
    flight. Without it the counters live inside each gateway process, so usage is
    summed from the audit log instead.
    """
    now = time.time() if now is None else now
    rule = quota.to_rule()
    slot = rule.window.slot(now)
    if settings.REDIS_URL:
        totals = _live_usage(rule, slot)
    else:
        totals = {
            key: sum(amount for bucket, amount in buckets if bucket >= slot.oldest)
            for key, buckets in stored_usage(rule, slot, minimum_seconds=0).items()
        }
    usages = [
        CounterUsage(
            dimensions=parse_counter_key(key),
            used=used,
            hard_limit=rule.hard_limit,
            soft_limit=rule.soft_limit,
        )
        for key, used in totals.items()
    ]
    return sorted(usages, key=lambda usage: usage.used, reverse=True)


def _live_usage(rule: QuotaRule, slot: Slot) -> dict[str, int]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    base = rule.counter_base({name: "*" for name in rule.dimensions})
    pattern = base.replace("=%2A", "=*") + f":{slot.suffix}"
    totals = {}
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            fields = client.hgetall(key)
            totals[key.decode()] = sum(
                int(amount)
                for bucket, amount in fields.items()
                if int(bucket) >= slot.oldest
            )
    finally:
        client.close()
    return totals
