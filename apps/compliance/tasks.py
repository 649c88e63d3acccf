"""Celery entry points of the compliance app."""

import logging

from celery import shared_task

from apps.compliance import services
from apps.compliance.models import BodyCapture
from apps.compliance.spill import write_spill

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def spill_body_task(capture_id: int, part: str, tail: str) -> str:
    """Write the part of a captured body past the inline limit to the spill store.

    Idempotent: the object name depends only on the request and the part, and a
    repeat run replaces the same object.
    """
    capture = BodyCapture.objects.filter(pk=capture_id).first()
    if capture is None or part not in ("request", "response"):
        return ""
    key = f"bodies/{capture.request_id}/{part}.tail.json"
    stored = write_spill(key, tail.encode("utf-8"))
    BodyCapture.objects.filter(pk=capture_id).update(**{f"{part}_spill_key": stored})
    return stored


@shared_task(acks_late=True)
def deliver_siem_task(destination_id: int) -> int:
    """Send one batch of due audit events to a destination.

    Idempotent: delivered rows are deleted in the same transaction that confirms
    them, so a repeat run only sends what is still due.
    """
    sent = services.deliver_due(destination_id)
    if sent:
        logger.info(
            "forwarded %s audit events", sent, extra={"destination_id": destination_id}
        )
    return sent


@shared_task
def forward_siem_task() -> int:
    """Queue a delivery for every destination with due events; idempotent."""
    destinations = services.due_destinations()
    for destination_id in destinations:
        deliver_siem_task.delay(destination_id)
    return len(destinations)


@shared_task
def expire_passthrough_task() -> int:
    """End passthrough flags past their expiry and log each; idempotent."""
    return services.expire_passthroughs()
