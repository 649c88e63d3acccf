"""Store hook stage records, captured bodies and SIEM outbox rows off the request path.

The writer reuses the audit writer's queue and batching. Before each batch it waits
for the gateway's audit writer to drain, so the audit events the SIEM tasks read
are already stored when their outbox rows appear.
"""

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import transaction
from django.db.utils import DatabaseError

from apps.audit.writer import AuditWriter
from apps.compliance.models import BodyCapture, HookStageRecord, SiemDelivery

logger = logging.getLogger(__name__)

INLINE_LIMIT = 256 * 1024


class ComplianceWriter(AuditWriter):
    """Batch-insert compliance rows for the events of one gateway process."""

    def __init__(self, *, audit: AuditWriter | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.audit = audit

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if self.audit is not None and not self.audit.flush(10):
            logger.warning(
                "audit writer did not drain before compliance rows were written"
            )
        try:
            _store_records(batch)
        except DatabaseError:
            logger.exception(
                "hook stage records of %s requests could not be stored", len(batch)
            )
        for item in batch:
            if item.get("capture") is not None:
                try:
                    store_capture(item)
                except DatabaseError:
                    logger.exception(
                        "body capture could not be stored",
                        extra={"request_id": item["request_id"]},
                    )
        self.written += len(batch)
        _queue_deliveries(batch)


def _store_records(batch: list[dict[str, Any]]) -> None:
    rows = []
    for item in batch:
        created = datetime.fromtimestamp(item["created_at"], UTC)
        for record in item.get("records") or []:
            rows.append(
                HookStageRecord(
                    request_id=item["request_id"],
                    organization_id=item.get("organization_id"),
                    stage=record["stage"],
                    hook=record["hook"][:100],
                    hook_id=record.get("hook_id"),
                    kind=record["kind"],
                    decision=record["decision"],
                    outcome=record.get("outcome", "ok"),
                    reason=(record.get("reason") or "")[:500],
                    rule_ids=record.get("rule_ids") or [],
                    tags=record.get("tags") or [],
                    duration_ms=record.get("duration_ms") or 0,
                    created_at=created,
                )
            )
    if rows:
        HookStageRecord.objects.bulk_create(rows)


def store_capture(item: dict[str, Any]) -> BodyCapture:
    """Store a captured body pair; anything past the inline limit goes to the spill store."""
    from apps.compliance.tasks import spill_body_task

    capture = item["capture"]
    request = _encode(capture.get("request"))
    response = _encode(capture.get("response"))
    row, _ = BodyCapture.objects.update_or_create(
        request_id=item["request_id"],
        defaults={
            "organization_id": item.get("organization_id"),
            "request_body": _head(request),
            "request_bytes": len(request),
            "response_body": _head(response),
            "response_bytes": len(response),
            "note": capture.get("note", "")[:200],
            "created_at": datetime.fromtimestamp(item["created_at"], UTC),
        },
    )
    for part, data in (("request", request), ("response", response)):
        tail = _tail(data)
        if tail:
            transaction.on_commit(
                lambda part=part, tail=tail: spill_body_task.delay(
                    row.pk, part, tail.decode("utf-8")
                )
            )
    return row


def _encode(value: Any) -> bytes:
    return b"" if value is None else orjson.dumps(value)


def _split_point(data: bytes) -> int:
    """Return the inline cut at or below INLINE_LIMIT that falls between UTF-8 characters."""
    cut = min(len(data), INLINE_LIMIT)
    while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def _head(data: bytes) -> str:
    return data[: _split_point(data)].decode("utf-8")


def _tail(data: bytes) -> bytes:
    return data[_split_point(data) :]


def _queue_deliveries(batch: list[dict[str, Any]]) -> None:
    from apps.compliance.tasks import deliver_siem_task

    rows = [
        SiemDelivery(destination_id=destination, request_id=item["request_id"])
        for item in batch
        for destination in item.get("destinations") or []
    ]
    if not rows:
        return
    try:
        SiemDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    except DatabaseError:
        logger.exception(
            "SIEM outbox rows for %s events could not be stored", len(rows)
        )
        return
    for destination in sorted({row.destination_id for row in rows}):
        try:
            deliver_siem_task.delay(destination)
        except Exception:
            # The periodic forwarder picks the rows up when the broker is back.
            logger.exception(
                "could not enqueue SIEM delivery", extra={"destination_id": destination}
            )
