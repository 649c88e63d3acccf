"""Current usage and remaining budget show per counter in the admin and the selectors."""

import threading

from django.contrib.auth import get_user_model
from django.db.backends import utils as db_utils
from django.test import Client

from apps.quotas.selectors import list_quota_usage
from tests.quotas.factories import make_quota
from tests.support.factories import make_tenant, unique


def test_usage_is_listed_per_key(quota_setup, db_rows):
    other = make_tenant(org=quota_setup.org)
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=1000)
    quota_setup.refresh()

    quota_setup.chat(max_tokens=3)
    quota_setup.chat(max_tokens=3)
    quota_setup.chat(key=other.key, max_tokens=3)
    quota_setup.gateway.flush_audit()

    usages = list_quota_usage(quota)
    assert [(u.dimensions, u.used, u.remaining) for u in usages] == [
        ({"key": str(quota_setup.key_row.pk)}, 10, 990),
        ({"key": str(other.key_row.pk)}, 5, 995),
    ]


def test_admin_page_shows_usage_and_remaining(quota_setup, db_rows):
    quota = make_quota(quota_setup.org, unit="usd", hard_limit="1.00")
    quota_setup.refresh()
    quota_setup.chat(max_tokens=3)
    quota_setup.gateway.flush_audit()
    admin = get_user_model().objects.create_superuser(unique("admin"), password="x")
    client = Client()
    client.force_login(admin)

    page = client.get(f"/admin/quotas/quota/{quota.pk}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "Current usage and remaining budget" in html
    assert f"key={quota_setup.key_row.pk}" in html
    assert "<td>0.000008</td><td>0.999992</td>" in html


def test_requests_under_quotas_make_no_database_query(quota_setup, monkeypatch):
    make_quota(
        quota_setup.org, unit="usd", window="day", hard_limit="10", soft_limit="5"
    )
    make_quota(quota_setup.org, unit="requests", window="minute", hard_limit=100)
    quota_setup.refresh()
    quota_setup.chat(max_tokens=3)
    quota_setup.gateway.flush_audit()
    queries: list[str] = []
    original_execute = db_utils.CursorWrapper.execute

    def record(self, sql, params=None):
        # The request path runs on the server's event loop thread; snapshot builds
        # and audit writes run in worker threads.
        if threading.current_thread() is quota_setup.gateway.thread:
            queries.append(sql[:80])
        return original_execute(self, sql, params)

    monkeypatch.setattr(db_utils.CursorWrapper, "execute", record)
    statuses = [quota_setup.chat(max_tokens=3).status_code for _ in range(10)]
    quota_setup.gateway.flush_audit()

    assert statuses == [200] * 10
    assert queries == []
