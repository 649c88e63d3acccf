"""Record the database queries that requests make on the gateway's request path."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.backends import utils as db_utils

from apps.gateway import runtime as runtime_module


@contextmanager
def request_path_queries(gateway, monkeypatch) -> Iterator[list[tuple[str, str]]]:
    """Yield a list that collects (thread, SQL) of every query made on the request path.

    Snapshot rebuilds and the audit writer run off the request path and are left
    out. A rebuild already running when recording starts is waited out first,
    because its queries could not be separated from the requests' queries.
    """
    queries: list[tuple[str, str]] = []
    building = threading.local()
    recording = threading.Event()
    original_execute = db_utils.CursorWrapper.execute
    original_build = runtime_module._build

    def record(self, sql, params=None):
        thread = threading.current_thread().name
        off_path = thread == "nexus-audit-writer" or getattr(building, "active", False)
        if recording.is_set() and not off_path:
            queries.append((thread, sql[:80]))
        return original_execute(self, sql, params)

    def build(version):
        building.active = True
        try:
            return original_build(version)
        finally:
            building.active = False

    monkeypatch.setattr(runtime_module, "_build", build)
    monkeypatch.setattr(db_utils.CursorWrapper, "execute", record)
    deadline = time.monotonic() + 10
    while gateway.runtime.reload_lock.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    recording.set()
    yield queries
    recording.clear()
