"""Admin pages of hooks, routing, cache and compliance scoped and authorized by IAM."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from apps.cache.models import CachePolicy, CachePurge, QuarantinedEntry
from apps.compliance.models import (
    BodyCapture,
    ComplianceSettings,
    ControlEvent,
    HookStageRecord,
    KillSwitch,
    SiemDelivery,
    SiemDestination,
)
from apps.compliance.services import save_control
from apps.hooks.models import Hook
from apps.iam.changelog import MASK
from apps.iam.models import AdminAuditLog
from apps.keys.services import issue_key
from apps.routing.models import Route
from tests.iam.factories import make_member, make_user, unique
from tests.iam.test_admin_scope import admin_client, change_url
from tests.support.factories import make_connection, make_model

ENTRY = "cd" * 32


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def add_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def hook_form(organization, **fields) -> dict:
    data = {
        "name": unique("hook"),
        "description": "",
        "kind": "pii",
        "stage": "request",
        "priority": 100,
        "enabled": "on",
        "organization": organization.pk if organization else "",
        "timeout_ms": 1000,
        "options": "{}",
    }
    data.update(fields)
    return data


def policy_form(policy: CachePolicy, **fields) -> dict:
    data = {
        "organization": policy.organization_id,
        "project": "",
        "key": "",
        "model": policy.model,
        "enabled": "on",
        "ttl_seconds": 60,
        "coalesce": "on",
        "share": CachePolicy.SHARE_PROJECT,
        "honor_headers": "on",
        "semantic_index": "",
        "semantic_threshold": "",
        "semantic_max_temperature": 1.0,
    }
    data.update(fields)
    return data


def destination_form(organization, **fields) -> dict:
    data = {
        "name": unique("siem"),
        "kind": SiemDestination.WEBHOOK,
        "enabled": "on",
        "organization": organization.pk,
        "host": "",
        "port": "",
        "transport": "tcp",
        "facility": 16,
        "url": "https://siem.example.test/events",
        "verify_tls": "on",
        "ca_certificate": "",
        "batch_size": 100,
        "max_attempts": 8,
        "backoff_seconds": 2.0,
        "token": "",
    }
    data.update(fields)
    return data


def with_django_permission(user, codename: str):
    """Give user a Django model permission, which the IAM evaluator must ignore."""
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def hooks(org, other_org):
    return {
        "mine": Hook.objects.create(name=unique("mine"), kind="pii", organization=org),
        "theirs": Hook.objects.create(
            name=unique("theirs"), kind="pii", organization=other_org
        ),
        "everyone": Hook.objects.create(name=unique("everyone"), kind="pii"),
    }


@pytest.fixture
def policies(org, other_org):
    return {
        "mine": CachePolicy.objects.create(organization=org, model=unique("mine")),
        "theirs": CachePolicy.objects.create(
            organization=other_org, model=unique("theirs")
        ),
        "everyone": CachePolicy.objects.create(model=unique("everyone")),
    }


@pytest.fixture
def switches(org, other_org):
    rows = {
        "mine": KillSwitch(scope="org", organization=org, reason="incident"),
        "theirs": KillSwitch(scope="org", organization=other_org, reason="incident"),
    }
    for switch in rows.values():
        save_control(switch, actor="ops")
    return rows


@pytest.fixture
def stage_records(org, other_org):
    return {
        name: HookStageRecord.objects.create(
            request_id=unique(f"req-{name}"),
            organization_id=organization.pk,
            stage="request",
            hook="pii",
            kind="pii",
            decision="redact",
        )
        for name, organization in (("mine", org), ("theirs", other_org))
    }


@pytest.fixture
def org_admin(org):
    return admin_client(make_member(org, "org_admin", is_staff=True))


def test_hook_list_is_scoped(org_admin, hooks):
    response = org_admin.get(changelist_url(Hook))

    page = response.content.decode()
    assert response.status_code == 200
    assert hooks["mine"].name in page
    assert hooks["theirs"].name not in page
    assert hooks["everyone"].name not in page


def test_org_admin_edits_own_hook(org, org_admin, hooks):
    hook = hooks["mine"]

    response = org_admin.post(
        change_url(hook), hook_form(org, name=hook.name, description="checked")
    )

    assert response.status_code == 302, response.content[:2000]
    hook.refresh_from_db()
    assert hook.description == "checked"
    entry = AdminAuditLog.objects.get(action="hooks:hook.update")
    assert entry.channel == AdminAuditLog.CHANNEL_ADMIN
    assert entry.organization_id == org.pk
    assert entry.after["description"] == "checked"


def test_other_org_hook_is_not_found(other_org, org_admin, hooks):
    hook = hooks["theirs"]

    change_page = org_admin.get(change_url(hook))
    posted = org_admin.post(
        change_url(hook), hook_form(other_org, name=hook.name, enabled="")
    )

    assert change_page.status_code == 302
    assert change_page.url == reverse("admin:index")
    assert posted.status_code == 302
    hook.refresh_from_db()
    assert hook.enabled is True


def test_cannot_add_all_organization_hook(org_admin, hooks):
    response = org_admin.post(add_url(Hook), hook_form(None, name="for-everyone"))

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Hook.objects.filter(name="for-everyone").exists()


def test_cannot_clear_hook_organization(org, org_admin, hooks):
    hook = hooks["mine"]

    response = org_admin.post(change_url(hook), hook_form(None, name=hook.name))

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    hook.refresh_from_db()
    assert hook.organization == org


def test_save_of_all_organization_hook_is_denied(org):
    request = RequestFactory().post("/admin/hooks/hook/add/")
    request.user = make_member(org, "org_owner", is_staff=True)
    hook = Hook(name=unique("everyone"), kind="pii")

    with pytest.raises(PermissionDenied):
        admin.site._registry[Hook].save_model(request, hook, None, False)

    assert hook.pk is None


def test_api_rejects_all_organization_hook(org, hooks):
    client = APIClient()
    client.force_login(make_member(org, "org_owner"))
    hook = hooks["mine"]

    created = client.post(
        "/api/v1/hooks/",
        {"organization": None, "name": "api-everyone", "kind": "pii"},
        format="json",
    )
    cleared = client.patch(
        f"/api/v1/hooks/{hook.pk}/", {"organization": None}, format="json"
    )

    assert created.status_code == 400
    assert not Hook.objects.filter(name="api-everyone").exists()
    assert cleared.status_code == 400
    hook.refresh_from_db()
    assert hook.organization == org


def test_policy_test_action_runs_own_hooks(org_admin, hooks):
    response = org_admin.post(
        changelist_url(Hook),
        {
            "action": "test_selected_hooks",
            "_selected_action": [hooks["mine"].pk],
            "text": "mail jane@example.test",
            "stage": "request",
            "region": "",
        },
    )

    assert response.status_code == 200
    assert "mail [EMAIL]" in response.content.decode()


def test_auditor_reads_stage_records_not_hooks(org, hooks, stage_records):
    auditor = admin_client(make_member(org, "auditor", is_staff=True))

    records = auditor.get(changelist_url(HookStageRecord))
    record = auditor.get(change_url(stage_records["mine"]))
    foreign_record = auditor.get(change_url(stage_records["theirs"]))
    hook_list = auditor.get(changelist_url(Hook))
    hook_form_page = auditor.get(change_url(hooks["mine"]))

    assert records.status_code == 200
    assert stage_records["mine"].request_id in records.content.decode()
    assert stage_records["theirs"].request_id not in records.content.decode()
    assert record.status_code == 200
    assert foreign_record.status_code == 302
    assert hook_list.status_code == 403
    assert hook_form_page.status_code == 403


def test_body_captures_hidden_from_viewers(org, other_org):
    mine = BodyCapture.objects.create(request_id=unique("req"), organization_id=org.pk)
    theirs = BodyCapture.objects.create(
        request_id=unique("req"), organization_id=other_org.pk
    )
    auditor = admin_client(make_member(org, "auditor", is_staff=True))
    viewer = admin_client(make_member(org, "viewer", is_staff=True))

    listed = auditor.get(changelist_url(BodyCapture))
    denied = viewer.get(change_url(mine))

    assert listed.status_code == 200
    assert mine.request_id in listed.content.decode()
    assert theirs.request_id not in listed.content.decode()
    assert denied.status_code == 403


def test_auditor_reads_own_control_events(org, switches):
    auditor = admin_client(make_member(org, "auditor", is_staff=True))
    mine = ControlEvent.objects.get(control_id=switches["mine"].pk)
    theirs = ControlEvent.objects.get(control_id=switches["theirs"].pk)

    listed = auditor.get(changelist_url(ControlEvent))
    change_page = auditor.get(change_url(mine))
    hidden = auditor.get(change_url(theirs))

    assert listed.status_code == 200
    assert change_page.status_code == 200
    assert hidden.status_code == 302
    assert auditor.get(changelist_url(KillSwitch)).status_code == 403


def test_routes_stay_superuser_only(org):
    route = Route.objects.create(
        name=unique("route"), model="gpt-4o", config="gpt-4o", organization=org
    )
    staff = make_member(org, "org_admin", is_staff=True)
    client = admin_client(with_django_permission(staff, "change_route"))

    listed = client.get(changelist_url(Route))
    changed = client.post(change_url(route), {"name": "renamed"})
    health = client.get(reverse("admin:routing_route_health"))

    assert listed.status_code == 403
    assert changed.status_code == 403
    assert health.status_code == 403
    route.refresh_from_db()
    assert route.name != "renamed"


def test_route_change_is_audited(db):
    model = make_model(make_connection("openai", "http://127.0.0.1:9/v1"), "gpt-4o")
    route = Route.objects.create(name=unique("route"), model=model.name, config="m")
    root = admin_client(make_user(is_staff=True, is_superuser=True))

    response = root.post(
        change_url(route),
        {
            "name": route.name,
            "description": "",
            "model": model.name,
            "priority": 100,
            "match_headers": "{}",
            "match_metadata": "{}",
            "config": f'"{model.name}"',
            "retries": 0,
            "backoff_seconds": 0.25,
            "max_backoff_seconds": 8,
            "timeout_seconds": "",
            "failover_statuses": "[]",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    entry = AdminAuditLog.objects.get(action="routing:route.update")
    assert entry.before["enabled"] is True
    assert entry.after["enabled"] is False


def test_cache_policy_list_is_scoped(org_admin, policies):
    response = org_admin.get(changelist_url(CachePolicy))

    page = response.content.decode()
    assert response.status_code == 200
    assert policies["mine"].model in page
    assert policies["theirs"].model not in page
    assert policies["everyone"].model not in page


def test_org_admin_edits_own_cache_policy(org, org_admin, policies):
    policy = policies["mine"]

    response = org_admin.post(change_url(policy), policy_form(policy, ttl_seconds=90))
    foreign = org_admin.get(change_url(policies["theirs"]))

    assert response.status_code == 302, response.content[:2000]
    policy.refresh_from_db()
    assert policy.ttl_seconds == 90
    entry = AdminAuditLog.objects.get(action="cache:policy.update")
    assert entry.organization_id == org.pk
    assert foreign.status_code == 302
    assert foreign.url == reverse("admin:index")


def test_viewer_cannot_change_cache_policy(org, policies):
    viewer = admin_client(make_member(org, "viewer", is_staff=True))
    policy = policies["mine"]

    change_page = viewer.get(change_url(policy))
    posted = viewer.post(change_url(policy), policy_form(policy, ttl_seconds=5))

    assert change_page.status_code == 200
    assert posted.status_code == 403
    policy.refresh_from_db()
    assert policy.ttl_seconds == 3600


def test_purge_action_is_scoped_and_audited(org, org_admin, policies):
    response = org_admin.post(
        changelist_url(CachePolicy),
        {
            "action": "purge_organizations",
            "_selected_action": [policies["mine"].pk, policies["theirs"].pk],
        },
    )

    assert response.status_code == 302
    purge = CachePurge.objects.get()
    assert purge.organization == org
    entry = AdminAuditLog.objects.get(action="cache:purge.create")
    assert entry.organization_id == org.pk


def test_org_admin_cannot_purge_every_organization(org_admin):
    response = org_admin.post(add_url(CachePurge), {"organization": "", "reason": ""})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not CachePurge.objects.exists()


def test_release_skips_other_org_entries(org, other_org, org_admin):
    mine = QuarantinedEntry.objects.create(entry_id=ENTRY, organization=org)
    theirs = QuarantinedEntry.objects.create(entry_id="ef" * 32, organization=other_org)

    response = org_admin.post(
        changelist_url(QuarantinedEntry),
        {"action": "release", "_selected_action": [mine.pk, theirs.pk]},
    )

    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.released_at is not None
    assert theirs.released_at is None
    assert AdminAuditLog.objects.filter(action="cache:quarantine.update").count() == 1


def test_kill_switch_release_is_audited(org_admin, switches):
    mine, theirs = switches["mine"], switches["theirs"]

    listed = org_admin.get(changelist_url(KillSwitch))
    released = org_admin.post(
        changelist_url(KillSwitch),
        {"action": "release", "_selected_action": [mine.pk, theirs.pk]},
    )

    assert listed.status_code == 200
    assert change_url(mine) in listed.content.decode()
    assert change_url(theirs) not in listed.content.decode()
    assert released.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.active is False
    assert theirs.active is True
    entry = AdminAuditLog.objects.get(action="compliance:kill_switch.update")
    assert entry.before["active"] is True
    assert entry.after["active"] is False


def test_key_choices_are_scoped(org, other_org, org_admin):
    mine = issue_key(organization=org, name=unique("mine")).key
    theirs = issue_key(organization=other_org, name=unique("theirs")).key

    response = org_admin.get(add_url(KillSwitch))

    assert response.status_code == 200
    assert mine.name in response.content.decode()
    assert theirs.name not in response.content.decode()


def test_viewer_cannot_release_kill_switch(org, switches):
    viewer = admin_client(make_member(org, "viewer", is_staff=True))
    switch = switches["mine"]

    change_page = viewer.get(change_url(switch))
    released = viewer.post(
        changelist_url(KillSwitch),
        {"action": "release", "_selected_action": [switch.pk]},
    )

    assert change_page.status_code == 200
    # The viewer may run no action, so Django ignores the request and shows the list.
    assert released.status_code == 200
    switch.refresh_from_db()
    assert switch.active is True


def test_org_admin_edits_compliance_settings(org, other_org, org_admin):
    mine = ComplianceSettings.objects.create(organization=org)
    theirs = ComplianceSettings.objects.create(organization=other_org)

    response = org_admin.post(
        change_url(mine), {"organization": org.pk, "capture_bodies": "on"}
    )
    foreign = org_admin.get(change_url(theirs))

    assert response.status_code == 302, response.content[:2000]
    mine.refresh_from_db()
    assert mine.capture_bodies is True
    assert foreign.status_code == 302


def test_siem_token_is_masked_in_audit_log(org, org_admin):
    response = org_admin.post(
        add_url(SiemDestination),
        destination_form(org, name="acme-siem", token="hec-secret-value"),
    )

    assert response.status_code == 302, response.content[:2000]
    destination = SiemDestination.objects.get(name="acme-siem")
    assert destination.organization == org
    entry = AdminAuditLog.objects.get(action="compliance:siem_destination.create")
    assert entry.organization_id == org.pk
    assert entry.after["token_ciphertext"] == MASK
    assert "hec-secret-value" not in str(entry.after)
    assert destination.token_ciphertext not in str(entry.after)


def test_siem_lists_are_scoped(org, other_org, org_admin):
    mine = SiemDestination.objects.create(
        name=unique("mine"), kind="webhook", url="https://a.test/", organization=org
    )
    theirs = SiemDestination.objects.create(
        name=unique("theirs"),
        kind="webhook",
        url="https://b.test/",
        organization=other_org,
    )
    SiemDelivery.objects.create(destination=mine, request_id="req-mine-1")
    SiemDelivery.objects.create(destination=theirs, request_id="req-theirs-1")

    destinations = org_admin.get(changelist_url(SiemDestination))
    deliveries = org_admin.get(changelist_url(SiemDelivery))

    assert mine.name in destinations.content.decode()
    assert theirs.name not in destinations.content.decode()
    assert "req-mine-1" in deliveries.content.decode()
    assert "req-theirs-1" not in deliveries.content.decode()
    assert theirs.name not in deliveries.content.decode()
