"""Config changes reach running gateways quickly, and requests never query the database."""

import time

import httpx
import pytest

from apps.keys.services import revoke_key
from tests.support.factories import make_tenant
from tests.support.process import GatewayProcess
from tests.support.queries import request_path_queries


def chat(url, key, model):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def wait_for_status(url, key, model, status, limit=5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if chat(url, key, model).status_code == status:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"status {status} not seen within {limit} s")


def test_new_key_works_without_refresh(setup, db_rows):
    tenant = make_tenant(org=setup.tenant.org)

    elapsed = wait_for_status(setup.gateway.url, tenant.key, setup.chat, 200)

    assert elapsed < 2.0


def test_revoked_key_is_rejected_within_two_seconds(setup, db_rows):
    tenant = make_tenant(org=setup.tenant.org)
    setup.gateway.refresh()
    assert chat(setup.gateway.url, tenant.key, setup.chat).status_code == 200

    revoke_key(tenant.key_row)
    elapsed = wait_for_status(setup.gateway.url, tenant.key, setup.chat, 401)

    assert elapsed < 2.0


@pytest.mark.shared_servers
def test_change_reaches_other_process_within_two_seconds(setup, db_rows):
    process = GatewayProcess()
    try:
        tenant = make_tenant(org=setup.tenant.org)
        elapsed = wait_for_status(process.url, tenant.key, setup.chat, 200)
        revoke_key(tenant.key_row)
        revoked_after = wait_for_status(process.url, tenant.key, setup.chat, 401)
    finally:
        process.stop()

    assert elapsed < 2.0
    assert revoked_after < 2.0


def test_requests_make_no_database_query(setup, monkeypatch):
    with request_path_queries(setup.gateway, monkeypatch) as queries:
        for _ in range(20):
            assert chat(setup.gateway.url, setup.key, setup.chat).status_code == 200
        stream = httpx.post(
            f"{setup.gateway.url}/v1/chat/completions",
            json={
                "model": setup.chat,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"authorization": f"Bearer {setup.key}"},
        )
        setup.gateway.flush_audit()

    assert stream.status_code == 200
    assert queries == []
