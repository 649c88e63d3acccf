from datetime import UTC, datetime, timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog
from tests.api.conftest import client_for
from tests.iam.factories import unique

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def events(world):
    def event(minutes, **fields):
        fields.setdefault("organization", world.org)
        return AuditEvent.objects.create(
            request_id=unique("req"),
            created_at=T0 + timedelta(minutes=minutes),
            ingress="openai_chat",
            status_code=fields.pop("status_code", 200),
            **fields,
        )

    return {
        "ok": event(0, model="gpt-a", key=world.rows["key_org"]),
        "error": event(5, model="gpt-b", status_code=429),
        "project": event(10, model="gpt-a", project=world.project),
        "foreign": event(15, organization=world.other_org, model="gpt-a"),
    }


def ids(response):
    return {row["id"] for row in response.json()["results"]}


def test_auditor_reads_own_org_only(world, events):
    response = client_for(world.members["auditor"]).get("/api/v1/audit-events/")

    assert response.status_code == 200
    assert events["foreign"].pk not in ids(response)
    assert {events["ok"].pk, events["error"].pk, events["project"].pk} <= ids(response)


def test_filter_by_status(world, events):
    response = client_for(world.members["auditor"]).get(
        "/api/v1/audit-events/?status=429"
    )

    assert ids(response) == {events["error"].pk}


def test_filter_by_time(world, events):
    after = (T0 + timedelta(minutes=1)).isoformat()
    before = (T0 + timedelta(minutes=9)).isoformat()

    response = client_for(world.members["auditor"]).get(
        "/api/v1/audit-events/", {"created_after": after, "created_before": before}
    )

    assert ids(response) == {events["error"].pk}


def test_filter_by_key(world, events):
    response = client_for(world.members["auditor"]).get(
        f"/api/v1/audit-events/?key={world.rows['key_org'].pk}"
    )

    assert ids(response) == {events["ok"].pk}


def test_filter_by_model(world, events):
    response = client_for(world.members["auditor"]).get(
        "/api/v1/audit-events/", {"model": "gpt-b", "organization": world.org.slug}
    )

    assert ids(response) == {events["error"].pk}


def test_project_admin_reads_project_events(world, events):
    response = client_for(world.members["project_admin"]).get("/api/v1/audit-events/")

    assert events["project"].pk in ids(response)
    assert events["ok"].pk not in ids(response)


def test_cursor_pagination_walks_newest_first(world, events):
    client = client_for(world.members["auditor"])

    first = client.get(
        "/api/v1/audit-events/?limit=2&created_before=2026-02-01T00:00:00Z"
    )
    second = client.get(first.json()["next"])

    seen = [row["id"] for row in first.json()["results"] + second.json()["results"]]
    assert seen == [events["project"].pk, events["error"].pk, events["ok"].pk]


def test_audit_events_are_read_only(world, events):
    response = client_for(world.members["org_owner"]).delete(
        f"/api/v1/audit-events/{events['ok'].pk}/"
    )

    assert response.status_code == 405


def test_api_change_reaches_admin_log(world):
    owner = client_for(world.members["org_owner"])
    owner.patch(
        f"/api/v1/keys/{world.rows['key_org'].pk}/",
        {"name": "renamed"},
        format="json",
        HTTP_X_REQUEST_ID="r-1",
    )

    response = client_for(world.members["auditor"]).get(
        "/api/v1/admin-audit-log/?action=keys:key.update"
    )

    rows = response.json()["results"]
    assert len(rows) == 1
    assert rows[0]["before"]["name"] == "org-wide"
    assert rows[0]["after"]["name"] == "renamed"
    assert rows[0]["after"]["digest"] == "***"
    assert rows[0]["request_id"] == "r-1"
    assert rows[0]["actor_user"] == world.members["org_owner"].pk
    assert (
        rows[0]["resource"]
        == f"nrn:nexus:keys:{world.org.slug}:key/{world.rows['key_org'].pk}"
    )


def test_admin_log_records_delete(world):
    owner = client_for(world.members["org_owner"])
    key = world.rows["key_org"]

    owner.delete(f"/api/v1/keys/{key.pk}/")

    entry = AdminAuditLog.objects.get(action="keys:key.delete")
    assert entry.after is None
    assert entry.before["name"] == "org-wide"
    assert entry.organization_id == world.org.pk


def test_org_delete_keeps_log_org(world):
    owner = client_for(world.members["org_owner"])
    org_id = world.org.pk

    owner.delete(f"/api/v1/orgs/{world.org.slug}/")

    assert (
        AdminAuditLog.objects.get(action="tenancy:organization.delete").organization_id
        == org_id
    )


def test_admin_log_hides_other_org(world):
    client_for(world.members["outsider"]).post(
        "/api/v1/projects/",
        {"organization": world.other_org.slug, "name": "theirs"},
        format="json",
    )

    response = client_for(world.members["auditor"]).get("/api/v1/admin-audit-log/")

    assert all(
        row["organization"] == world.org.slug for row in response.json()["results"]
    )
