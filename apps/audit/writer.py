"""Batch writer that stores audit events off the request path.

The gateway puts plain dicts on a bounded in-process queue; a daemon thread drains it
and inserts them in batches with bulk_create, so no database call runs on the event
loop. A batch that fails is retried row by row so one bad row does not lose others.
"""

import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import close_old_connections, connection
from django.db.utils import DatabaseError

from apps.audit.models import AuditEvent
from apps.keys.models import VirtualKey

logger = logging.getLogger(__name__)


class AuditWriter:
    """Queue and batch-insert audit events from one process."""

    def __init__(
        self,
        *,
        batch_size: int = 500,
        flush_seconds: float = 0.5,
        linger_seconds: float = 0.0,
        max_queue: int = 100_000,
    ) -> None:
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(max_queue)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        # After the first event of a batch, wait this long for more to join it: one
        # insert of many rows costs far less than many inserts of one.
        self.linger_seconds = linger_seconds
        # Set while flush() waits, so a lingering batch is written at once.
        self.hurry = threading.Event()
        self.dropped = 0
        self.written = 0
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.idle = threading.Condition()
        self.pending = 0

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name="nexus-audit-writer", daemon=True
            )
            self.thread.start()

    def submit(self, event: dict[str, Any]) -> None:
        """Queue an event without blocking; a full queue drops it and counts the drop."""
        with self.idle:
            self.pending += 1
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            with self.idle:
                self.pending -= 1
                self.dropped += 1
            if self.dropped % 1000 == 1:
                logger.error("audit queue full; %s events dropped so far", self.dropped)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is written; return False on timeout."""
        deadline = time.monotonic() + timeout
        self.hurry.set()
        try:
            with self.idle:
                while self.pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self.idle.wait(remaining)
        finally:
            self.hurry.clear()
        return True

    def stop(self) -> None:
        self.flush()
        self.stopping.set()

    def _run(self) -> None:
        while not self.stopping.is_set():
            batch = self._take_batch()
            if not batch:
                continue
            try:
                self._write(batch)
            except Exception:
                logger.exception(
                    "audit writer failed on a batch of %s events", len(batch)
                )
            finally:
                close_old_connections()
                with self.idle:
                    self.pending -= len(batch)
                    self.idle.notify_all()
        connection.close()

    def _take_batch(self) -> list[dict[str, Any]]:
        try:
            first = self.queue.get(timeout=self.flush_seconds)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.linger_seconds
        while len(batch) < self.batch_size:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.hurry.is_set():
                break
            try:
                # Short waits, so a flush() that starts meanwhile is noticed soon.
                batch.append(self.queue.get(timeout=min(remaining, 0.01)))
            except queue.Empty:
                continue
        return batch

    def _write(self, batch: list[dict[str, Any]]) -> None:
        rows = [_row(event) for event in batch]
        try:
            if connection.vendor == "postgresql":
                _copy_rows(rows)
            else:
                AuditEvent.objects.bulk_create(rows, ignore_conflicts=True)
        except DatabaseError:
            logger.warning(
                "audit batch insert failed; retrying %s rows one by one", len(rows)
            )
            for row in rows:
                try:
                    AuditEvent.objects.bulk_create([row], ignore_conflicts=True)
                except DatabaseError:
                    logger.exception("audit row %s could not be stored", row.request_id)
        self.written += len(rows)
        _touch_keys(batch)


def _copy_rows(rows: list[AuditEvent]) -> None:
    """Insert rows with PostgreSQL COPY, which costs a fraction of an ORM insert.

    COPY has no ON CONFLICT, so a duplicate request id fails the whole batch and the
    caller falls back to row-by-row inserts that skip duplicates.
    """
    fields = [
        field for field in AuditEvent._meta.concrete_fields if not field.primary_key
    ]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_copy_value(field, row) for field in fields])


def _copy_value(field, row: AuditEvent) -> Any:
    value = getattr(row, field.attname)
    if field.attname == "details":
        # PostgreSQL jsonb rejects the NUL character even when escaped.
        return orjson.dumps(value or {}).replace(b"\\u0000", b"").decode()
    return value


def _row(event: dict[str, Any]) -> AuditEvent:
    fields = dict(event)
    fields["created_at"] = datetime.fromtimestamp(fields.pop("created_at"), UTC)
    for name in ("requested_model", "model", "upstream_model"):
        # NUL bytes are valid in JSON strings but PostgreSQL text rejects them.
        if isinstance(fields.get(name), str):
            fields[name] = fields[name].replace("\x00", "")[:200]
    return AuditEvent(**fields)


def _touch_keys(batch: list[dict[str, Any]]) -> None:
    last_used: dict[int, float] = {}
    for event in batch:
        key_id = event.get("key_id")
        if key_id:
            last_used[key_id] = max(last_used.get(key_id, 0), event["created_at"])
    for key_id, stamp in last_used.items():
        VirtualKey.objects.filter(pk=key_id).update(
            last_used_at=datetime.fromtimestamp(stamp, UTC)
        )
