"""Routed requests stay off the database: routes and health come from memory."""

from tests.routing.conftest import OPENAI_PATH
from tests.support.queries import request_path_queries


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
    routing.gateway.refresh()
    with request_path_queries(routing.gateway, monkeypatch) as queries:
        routing.fake.enqueue(OPENAI_PATH, {"status": 503, "error": "server_error"})
        statuses = [routing.chat(primary.name).status_code for _ in range(10)]
        streamed = routing.chat(primary.name, stream=True)
        routing.gateway.flush_audit()

    assert statuses == [200] * 10
    assert streamed.status_code == 200
    assert queries == []
