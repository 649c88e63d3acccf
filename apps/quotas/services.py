"""Write use cases of quotas: definitions, settings, soft-limit alerts and roll-ups."""

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup
from apps.tenancy.models import Organization
from nexus.engine.quotas.messages import format_amount
from nexus.engine.quotas.rules import Unit
from nexus.engine.quotas.stage import SoftLimitCrossing

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0


def save_quota(quota: Quota) -> Quota:
    """Validate and store a quota; the gateways pick it up with the next snapshot."""
    quota.full_clean()
    quota.save()
    return quota


def delete_quota(quota: Quota) -> None:
    """Delete a quota; its counters stop counting and expire with their windows."""
    quota.delete()


def update_quota_settings(organization: Organization, **fields: Any) -> QuotaSettings:
    """Create or change an organization's quota settings."""
    row = QuotaSettings.objects.filter(organization=organization).first()
    row = row or QuotaSettings(organization=organization)
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def enqueue_soft_limit_alert(crossing: SoftLimitCrossing) -> None:
    """Queue the delivery of a soft-limit alert (runs it inline under eager Celery)."""
    from apps.quotas.tasks import deliver_soft_limit_alert_task

    try:
        deliver_soft_limit_alert_task.apply_async(
            kwargs={"crossing": dataclasses.asdict(crossing)},
            queue=settings.NEXUS_QUOTA_ALERT_QUEUE,
        )
    finally:
        # Under eager Celery the task used this worker thread's database connection.
        close_old_connections()


def record_soft_limit_crossing(crossing: dict[str, Any]) -> tuple[QuotaAlert, bool]:
    """Store the crossing once per counter and window; return the row and if it is new."""
    window_start = datetime.fromtimestamp(crossing["window_start"], UTC)
    existing = QuotaAlert.objects.filter(
        counter=crossing["counter"], window_start=window_start
    ).first()
    if existing is not None:
        return existing, False
    alert = QuotaAlert(
        organization_id=crossing["org_id"],
        quota_id=crossing["rule_id"],
        quota_name=crossing["rule_name"],
        counter=crossing["counter"],
        dimensions=crossing["dimensions"],
        unit=crossing["unit"],
        window_start=window_start,
        used=crossing["used"],
        soft_limit=crossing["soft_limit"],
        hard_limit=crossing["hard_limit"],
        request_id=crossing["request_id"],
    )
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:
        # Another worker stored the same crossing first.
        return QuotaAlert.objects.get(
            counter=crossing["counter"], window_start=window_start
        ), False
    logger.info(
        "quota soft limit crossed",
        extra={"tenant_id": alert.organization_id, "request_id": alert.request_id},
    )
    return alert, True


def deliver_alert(alert: QuotaAlert) -> bool:
    """POST an alert to its organization's webhook; return whether it is settled.

    Settled means delivered, or nothing to deliver to. A failed attempt is recorded
    on the row and returns False so the caller may retry.
    """
    if alert.status in (QuotaAlert.DELIVERED, QuotaAlert.NO_WEBHOOK):
        return True
    url = (
        QuotaSettings.objects.filter(organization_id=alert.organization_id)
        .values_list("alert_webhook_url", flat=True)
        .first()
    )
    if not url:
        alert.status = QuotaAlert.NO_WEBHOOK
        alert.save(update_fields=["status"])
        return True
    alert.attempts += 1
    try:
        response = httpx.post(
            url, json=alert_payload(alert), timeout=WEBHOOK_TIMEOUT_SECONDS
        )
        failure = "" if response.is_success else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        failure = f"{type(exc).__name__}: {exc}"[:500]
    if failure:
        alert.status = QuotaAlert.FAILED
        alert.last_error = failure
        logger.warning(
            "quota alert webhook failed (attempt %s): %s",
            alert.attempts,
            failure,
            extra={"tenant_id": alert.organization_id},
        )
    else:
        alert.status = QuotaAlert.DELIVERED
        alert.delivered_at = timezone.now()
        alert.last_error = ""
    alert.save(update_fields=["status", "attempts", "delivered_at", "last_error"])
    return not failure


def alert_payload(alert: QuotaAlert) -> dict[str, Any]:
    """Return the JSON body the webhook receives for an alert."""
    unit = Unit(alert.unit)
    organization = Organization.objects.filter(pk=alert.organization_id).first()
    quota = alert.quota
    return {
        "type": "quota.soft_limit_reached",
        "alert_id": alert.pk,
        "organization": organization.slug if organization else None,
        "quota": {
            "id": str(quota.uid) if quota else None,
            "name": alert.quota_name,
            "axis": quota.axis if quota else None,
            "unit": alert.unit,
            "window": quota.window if quota else None,
            "soft_limit": format_amount(unit, alert.soft_limit),
            "hard_limit": None
            if alert.hard_limit is None
            else format_amount(unit, alert.hard_limit),
        },
        "dimensions": alert.dimensions,
        "used": format_amount(unit, alert.used),
        "window_start": alert.window_start.isoformat(),
        "crossed_at": alert.created_at.isoformat(),
        "request_id": alert.request_id,
    }


def rollup_usage(start: datetime, end: datetime) -> int:
    """Recompute the hourly roll-ups of [start, end) from audit events; return the count.

    Hours are recomputed whole and stored by upsert, so running twice, or
    concurrently, gives the same rows.
    """
    first = start.replace(minute=0, second=0, microsecond=0)
    rows = (
        AuditEvent.objects.filter(
            created_at__gte=first, created_at__lt=end, organization_id__isnull=False
        )
        .annotate(hour=Trunc("created_at", "hour", tzinfo=UTC))
        .values("hour", "organization_id", "project_id", "key_id", "provider", "model")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status_code__gte=400)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cost_nano_usd=Sum("cost_nano_usd"),
        )
        .order_by()
    )
    rollups = [
        UsageRollup(
            hour=row["hour"],
            organization_id=row["organization_id"],
            project_id=row["project_id"] or 0,
            key_id=row["key_id"] or 0,
            provider=row["provider"],
            model=row["model"],
            requests=row["requests"],
            errors=row["errors"],
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            cached_tokens=row["cached_tokens"] or 0,
            cost_nano_usd=row["cost_nano_usd"] or 0,
        )
        for row in rows
    ]
    UsageRollup.objects.bulk_create(
        rollups,
        update_conflicts=True,
        unique_fields=[
            "hour",
            "organization",
            "project_id",
            "key_id",
            "provider",
            "model",
        ],
        update_fields=[
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cost_nano_usd",
            "updated_at",
        ],
    )
    return len(rollups)


def rollup_recent_usage(hours: int, now: datetime | None = None) -> int:
    """Recompute the current hour and the `hours` hours before it."""
    now = now or timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    return rollup_usage(start, now + timedelta(seconds=1))
