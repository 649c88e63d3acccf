"""The audit writer batches events off the request path and drains on flush."""

import threading

import pytest

from apps.audit.writer import AuditWriter
from tests.support.waiting import wait_for


class RecordingWriter(AuditWriter):
    """An audit writer that records batch sizes instead of inserting rows."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def _write(self, batch) -> None:
        with self.lock:
            self.batches.append(len(batch))


@pytest.fixture
def writers():
    started: list[AuditWriter] = []

    def start(**kwargs) -> RecordingWriter:
        writer = RecordingWriter(flush_seconds=0.05, **kwargs)
        writer.start()
        started.append(writer)
        return writer

    yield start
    for writer in started:
        writer.stopping.set()


def event(number: int) -> dict:
    return {"request_id": f"req_{number}", "created_at": 0.0}


def test_linger_groups_events_in_one_batch(writers):
    writer = writers(linger_seconds=30.0)

    for number in range(3):
        writer.submit(event(number))
    drained = writer.flush(timeout=5)

    assert drained
    assert writer.batches == [3]


def test_flush_cuts_the_linger_short(writers):
    writer = writers(linger_seconds=30.0)
    writer.submit(event(1))

    assert writer.flush(timeout=5)
    assert writer.batches == [1]


def test_full_batch_skips_the_linger(writers):
    writer = writers(linger_seconds=30.0, batch_size=4)

    for number in range(4):
        writer.submit(event(number))

    wait_for(lambda: writer.batches, timeout=5)
    assert writer.batches == [4]


def test_zero_linger_writes_at_once(writers):
    writer = writers(linger_seconds=0.0)
    writer.submit(event(1))

    wait_for(lambda: writer.batches, timeout=5)
    assert writer.batches == [1]
