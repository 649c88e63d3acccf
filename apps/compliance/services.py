"""Write use cases of kill switches, passthrough flags and SIEM delivery."""

import logging
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance.models import (
    ControlEvent,
    KillSwitch,
    PassthroughFlag,
    SiemDelivery,
    SiemDestination,
)
from apps.compliance.siem.formats import event_record
from apps.compliance.siem.senders import DeliveryError, send_http, send_syslog
from apps.providers.vault import key_ring
from nexus.engine.vault import Sealed

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 600.0
# An outbox row whose audit event has not appeared after this long is dead-lettered.
MISSING_EVENT_SECONDS = 3600


def record_control_event(
    control, action: str, actor: str = "", reason: str = ""
) -> ControlEvent:
    """Write one entry of the control audit log."""
    control_type = "kill_switch" if isinstance(control, KillSwitch) else "passthrough"
    details = {"scope": control.scope}
    if isinstance(control, PassthroughFlag):
        details["bypass"] = control.bypass_names()
        details["expires_at"] = control.expires_at.isoformat()
    event = ControlEvent.objects.create(
        control_type=control_type,
        control_id=control.pk,
        action=action,
        actor=actor,
        reason=reason or control.reason,
        details=details,
    )
    logger.info(
        "%s %s turned %s by %s",
        control_type,
        control.pk,
        action,
        actor or "the system",
        extra={"control_id": control.pk},
    )
    return event


@transaction.atomic
def save_control(control, *, actor: str, reason: str = "") -> None:
    """Validate and save a kill switch or passthrough flag, logging on and off changes.

    `reason` explains this change in the control log; without one the log repeats
    the control's own reason, which explains why it was switched on.
    """
    control.full_clean()
    previous = (
        type(control).objects.filter(pk=control.pk).first() if control.pk else None
    )
    control.save()
    was_on = _is_on(previous) if previous else False
    now_on = _is_on(control)
    if now_on and not was_on:
        record_control_event(control, "on", actor, reason)
    elif was_on and not now_on:
        record_control_event(control, "off", actor, reason)
    elif previous is not None:
        record_control_event(control, "changed", actor, reason)


def _is_on(control) -> bool:
    if isinstance(control, KillSwitch):
        return control.active
    return control.ended_at is None and control.expires_at > timezone.now()


@transaction.atomic
def end_passthrough(flag: PassthroughFlag, *, actor: str, reason: str = "") -> None:
    """Switch a passthrough flag off before its expiry; repeat calls change nothing."""
    if flag.ended_at is not None:
        return
    flag.ended_at = timezone.now()
    flag.save(update_fields=["ended_at"])
    record_control_event(flag, "off", actor, reason)


def expire_passthroughs() -> int:
    """Mark flags past their expiry as ended and log each; return how many expired."""
    expired = 0
    for flag in PassthroughFlag.objects.filter(
        ended_at__isnull=True, expires_at__lte=timezone.now()
    ):
        with transaction.atomic():
            flag.ended_at = flag.expires_at
            flag.save(update_fields=["ended_at"])
            record_control_event(flag, "expired", "", "expired automatically")
            expired += 1
    return expired


def set_destination_token(destination: SiemDestination, token: str) -> None:
    """Encrypt a HEC token or webhook signing secret into the destination (not saved)."""
    if not token:
        destination.token_ciphertext = destination.token_key_id = ""
        return
    sealed = key_ring().seal(token, f"siem:{destination.token_uuid}")
    destination.token_ciphertext, destination.token_key_id = sealed.blob, sealed.key_id


def destination_token(destination: SiemDestination) -> str:
    if not destination.token_ciphertext:
        return ""
    sealed = Sealed(key_id=destination.token_key_id, blob=destination.token_ciphertext)
    return key_ring().open(sealed, f"siem:{destination.token_uuid}")


def backoff_seconds(destination: SiemDestination, attempts: int) -> float:
    """Return the delay before the next attempt: doubling, capped, with jitter."""
    step = min(
        MAX_BACKOFF_SECONDS, destination.backoff_seconds * 2 ** max(attempts - 1, 0)
    )
    return step * random.uniform(0.5, 1.0)


def deliver_due(destination_id: int) -> int:
    """Send the destination's due outbox rows in one batch; return how many were sent.

    Rows are locked while they are sent, so two workers never send the same batch.
    A row is deleted only after the destination accepted the batch; a failure
    reschedules the batch with backoff and dead-letters rows past max_attempts. A
    worker that stops between a successful send and the commit sends that batch
    again, which is the only way a receiver sees an event twice.
    """
    destination = SiemDestination.objects.filter(
        pk=destination_id, enabled=True
    ).first()
    if destination is None:
        return 0
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            SiemDelivery.objects.select_for_update(skip_locked=True)
            .filter(
                destination=destination,
                state=SiemDelivery.PENDING,
                next_attempt_at__lte=now,
            )
            .order_by("id")[: destination.batch_size]
        )
        if not rows:
            return 0
        events = {
            event.request_id: event
            for event in AuditEvent.objects.filter(
                request_id__in=[row.request_id for row in rows]
            )
        }
        ready = [row for row in rows if row.request_id in events]
        _age_missing([row for row in rows if row.request_id not in events], now)
        if not ready:
            return 0
        records = [event_record(events[row.request_id]) for row in ready]
        try:
            _send(destination, records)
        except DeliveryError as exc:
            _reschedule(destination, ready, str(exc), now)
            return 0
        SiemDelivery.objects.filter(pk__in=[row.pk for row in ready]).delete()
    return len(ready)


def _send(destination: SiemDestination, records: list[dict]) -> None:
    if destination.kind == SiemDestination.SYSLOG:
        send_syslog(destination, records)
    else:
        send_http(destination, destination_token(destination), records)


def _reschedule(
    destination: SiemDestination, rows: list[SiemDelivery], error: str, now
) -> None:
    dead = 0
    for row in rows:
        row.attempts += 1
        row.last_error = error[:500]
        if row.attempts >= destination.max_attempts:
            row.state = SiemDelivery.DEAD
            dead += 1
        else:
            row.next_attempt_at = now + timedelta(
                seconds=backoff_seconds(destination, row.attempts)
            )
        row.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])
    logger.warning(
        "SIEM delivery to %s failed for %s events (%s); %s dead-lettered",
        destination.name,
        len(rows),
        error,
        dead,
        extra={"destination_id": destination.pk},
    )


def _age_missing(rows: list[SiemDelivery], now) -> None:
    for row in rows:
        if (now - row.created_at).total_seconds() > MISSING_EVENT_SECONDS:
            row.state = SiemDelivery.DEAD
            row.last_error = "the audit event was never stored"
            row.save(update_fields=["state", "last_error"])


def requeue_dead(destination_ids: list[int] | None = None) -> int:
    """Move dead-lettered rows back to pending with a fresh attempt count."""
    rows = SiemDelivery.objects.filter(state=SiemDelivery.DEAD)
    if destination_ids is not None:
        rows = rows.filter(destination_id__in=destination_ids)
    return rows.update(
        state=SiemDelivery.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        last_error="",
    )


def due_destinations() -> list[int]:
    """Return the enabled destinations that have rows due now."""
    return list(
        SiemDelivery.objects.filter(
            state=SiemDelivery.PENDING,
            next_attempt_at__lte=timezone.now(),
            destination__enabled=True,
        )
        .order_by()
        .values_list("destination_id", flat=True)
        .distinct()
    )
