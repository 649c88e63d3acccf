"""The quotas REST API: definitions, usage, settings, alerts and roll-ups, per tenant."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup
from tests.iam.factories import make_member, make_org, make_project
from tests.quotas.factories import make_quota
from tests.support.factories import make_tenant

URL = "/api/v1/quotas/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def org(db):
    return make_org()


@pytest.fixture
def owner(org) -> APIClient:
    return client_for(make_member(org, "org_owner"))


@pytest.fixture
def viewer(org) -> APIClient:
    return client_for(make_member(org, "viewer"))


@pytest.fixture
def outsider(db) -> APIClient:
    return client_for(make_member(make_org(), "org_owner"))


def quota_body(org, **fields) -> dict:
    body = {
        "organization": org.slug,
        "name": "Monthly spend",
        "axis": "key",
        "unit": "usd",
        "window": "calendar_month",
        "timezone": "Europe/Paris",
        "soft_limit": "50",
        "hard_limit": "100",
    }
    body.update(fields)
    return body


def test_owner_creates_and_reads_quota(owner, org):
    created = owner.post(URL, quota_body(org), format="json")

    assert created.status_code == 201, created.content
    row = Quota.objects.get(pk=created.json()["id"])
    assert row.organization == org
    assert row.hard_limit == 100
    fetched = owner.get(f"{URL}{row.pk}/")
    assert fetched.json()["timezone"] == "Europe/Paris"
    assert fetched.json()["uid"] == str(row.uid)


def test_invalid_quota_gets_field_errors(owner, org):
    response = owner.post(URL, quota_body(org, soft_limit="100"), format="json")

    assert response.status_code == 400
    assert "soft_limit" in response.json()["error"]["details"]


def test_key_of_other_organization_is_rejected(owner, org):
    foreign = make_tenant(org=make_org())

    response = owner.post(URL, quota_body(org, key=foreign.key_row.pk), format="json")

    assert response.status_code == 400
    assert "key" in response.json()["error"]["details"]


def test_project_quota_is_created_in_project(owner, org):
    project = make_project(org)

    response = owner.post(
        URL, quota_body(org, axis="project", project=project.pk), format="json"
    )

    assert response.status_code == 201, response.content
    assert Quota.objects.get(pk=response.json()["id"]).project == project


def test_owner_updates_and_deletes_quota(owner, org):
    quota = make_quota(org, unit="tokens", hard_limit=100)

    changed = owner.patch(f"{URL}{quota.pk}/", {"hard_limit": "200"}, format="json")
    deleted = owner.delete(f"{URL}{quota.pk}/")

    assert changed.status_code == 200
    assert changed.json()["hard_limit"] == "200.000000000"
    assert deleted.status_code == 204
    assert not Quota.objects.filter(pk=quota.pk).exists()


def test_viewer_reads_but_cannot_create(viewer, org):
    make_quota(org, unit="tokens", hard_limit=100)

    listed = viewer.get(URL)
    created = viewer.post(URL, quota_body(org), format="json")

    assert listed.status_code == 200
    assert len(listed.json()["results"]) == 1
    assert created.status_code == 403


def test_other_organization_gets_404(outsider, org):
    quota = make_quota(org, unit="tokens", hard_limit=100)

    assert outsider.get(f"{URL}{quota.pk}/").status_code == 404
    assert outsider.get(f"{URL}{quota.pk}/usage/").status_code == 404
    assert (
        outsider.patch(f"{URL}{quota.pk}/", {"name": "x"}, format="json").status_code
        == 404
    )


def test_usage_endpoint_lists_counters(quota_setup, db_rows):
    quota = make_quota(quota_setup.org, unit="usd", hard_limit="1.00", soft_limit="0.5")
    quota_setup.refresh()
    quota_setup.chat(max_tokens=3)
    quota_setup.gateway.flush_audit()
    client = client_for(make_member(quota_setup.org, "viewer"))

    response = client.get(f"{URL}{quota.pk}/usage/")

    body = response.json()
    assert response.status_code == 200
    assert body["hard_limit"] == "1.00"
    assert body["soft_limit"] == "0.50"
    assert body["window"] == "calendar month"
    assert body["counters"] == [
        {
            "dimensions": {"key": str(quota_setup.key_row.pk)},
            "used": "0.000008",
            "remaining": "0.999992",
        }
    ]


def test_settings_are_created_once_and_updated(owner, org):
    created = owner.post(
        "/api/v1/quota-settings/",
        {
            "organization": org.slug,
            "fail_mode": "closed",
            "alert_webhook_url": "http://127.0.0.1:9/hook",
        },
        format="json",
    )
    again = owner.post(
        "/api/v1/quota-settings/", {"organization": org.slug}, format="json"
    )
    changed = owner.patch(
        f"/api/v1/quota-settings/{created.json()['id']}/",
        {"default_output_tokens": 256},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert again.status_code == 201
    assert again.json()["id"] == created.json()["id"]
    assert QuotaSettings.objects.filter(organization=org).count() == 1
    assert changed.status_code == 200
    assert changed.json()["fail_mode"] == "closed"
    assert changed.json()["default_output_tokens"] == 256


def test_alerts_and_rollups_are_listed_per_organization(viewer, outsider, org):
    quota = make_quota(org, unit="tokens", soft_limit=10)
    QuotaAlert.objects.create(
        organization=org,
        quota=quota,
        quota_name=quota.name,
        counter="nq:{o1}:x:tokens.cm:all:0",
        unit="tokens",
        window_start=datetime(2025, 6, 1, tzinfo=UTC),
        used=12,
        soft_limit=10,
    )
    UsageRollup.objects.create(
        hour=datetime(2025, 6, 1, 10, tzinfo=UTC), organization=org, requests=3
    )

    alerts = viewer.get("/api/v1/quota-alerts/").json()["results"]
    rollups = viewer.get("/api/v1/usage-rollups/?hour__gte=2025-06-01T00:00:00Z").json()
    foreign = outsider.get("/api/v1/quota-alerts/").json()["results"]

    assert [alert["used"] for alert in alerts] == [12]
    assert alerts[0]["quota"] == str(quota.uid)
    assert [row["requests"] for row in rollups["results"]] == [3]
    assert foreign == []
