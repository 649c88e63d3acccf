"""Routed requests stay off the database: routes and health come from memory."""

import threading
import time

from django.db.backends import utils as db_utils

from apps.gateway import runtime as runtime_module
from tests.routing.conftest import OPENAI_PATH


def test_routed_requests_make_no_database_query(routing, monkeypatch):
    primary = routing.model("gpt-primary")
    backup = routing.model("gpt-backup")
    routing.route(
        primary,
        {
            "strategy": "conditional",
            "rules": [{"when": {"has_tools": True}, "then": backup.name}],
            "default": {"strategy": "fallback", "targets": [primary.name, backup.name]},
        },
    )
    # Let the reload that the route's change message started finish first.
    time.sleep(0.5)
    routing.gateway.refresh()
    queries: list[tuple[str, str]] = []
    building = threading.local()
    original_execute = db_utils.CursorWrapper.execute
    original_build = runtime_module._build

    def record(self, sql, params=None):
        thread = threading.current_thread().name
        # Snapshot rebuilds and the audit writer run off the request path.
        if thread != "nexus-audit-writer" and not getattr(building, "active", False):
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
    routing.fake.enqueue(OPENAI_PATH, {"status": 503, "error": "server_error"})
    statuses = [routing.chat(primary.name).status_code for _ in range(10)]
    streamed = routing.chat(primary.name, stream=True)
    routing.gateway.flush_audit()

    assert statuses == [200] * 10
    assert streamed.status_code == 200
    assert queries == []
