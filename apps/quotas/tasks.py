"""Celery entry points of quotas: soft-limit alerts and hourly usage roll-ups."""

import logging
from typing import Any

from celery import shared_task

from apps.quotas.services import (
    deliver_alert,
    record_soft_limit_crossing,
    rollup_recent_usage,
)

logger = logging.getLogger(__name__)

MAX_DELIVERY_RETRIES = 5


@shared_task(bind=True, max_retries=MAX_DELIVERY_RETRIES, ignore_result=True)
def deliver_soft_limit_alert_task(self, crossing: dict[str, Any]) -> None:
    """Record a soft-limit crossing and POST it to the organization's webhook.

    Idempotent: the crossing is stored once per counter and window, and an alert that
    was delivered is not sent again. A failed delivery is retried with backoff by a
    real worker; eager Celery tries once.
    """
    alert, _ = record_soft_limit_crossing(crossing)
    if deliver_alert(alert) or self.request.is_eager:
        return
    raise self.retry(countdown=min(300, 5 * 2**self.request.retries))


@shared_task(ignore_result=True)
def rollup_usage_task(hours: int = 2) -> int:
    """Recompute the hourly usage roll-ups of the current and previous hours.

    Idempotent: hours are recomputed whole and stored by upsert.
    """
    written = rollup_recent_usage(hours)
    logger.info("usage roll-up wrote %s rows", written)
    return written
