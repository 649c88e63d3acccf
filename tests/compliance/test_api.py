"""The kill switch and passthrough REST API of an organization."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.compliance.models import ControlEvent, KillSwitch, PassthroughFlag
from tests.iam.factories import make_member, make_org
from tests.support.factories import make_tenant


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
def outsider(db) -> APIClient:
    return client_for(make_member(make_org(), "org_owner"))


def test_owner_stops_and_releases_the_organization(owner, org):
    created = owner.post(
        "/api/v1/kill-switches/",
        {"organization": org.slug, "scope": "org", "reason": "leak"},
        format="json",
    )

    assert created.status_code == 201, created.content
    switch = KillSwitch.objects.get(pk=created.json()["id"])
    assert switch.active
    released = owner.post(
        f"/api/v1/kill-switches/{switch.pk}/release/",
        {"reason": "leak contained"},
        format="json",
    )
    assert released.json()["active"] is False
    assert list(
        ControlEvent.objects.filter(control_id=switch.pk)
        .values_list("action", "reason")
        .order_by("id")
    ) == [("on", "leak"), ("off", "leak contained")]


@pytest.mark.parametrize("body", [{}, {"reason": ""}], ids=["missing", "blank"])
def test_release_without_a_reason_is_refused(owner, org, body):
    switch = KillSwitch.objects.create(scope="org", organization=org, reason="leak")

    response = owner.post(
        f"/api/v1/kill-switches/{switch.pk}/release/", body, format="json"
    )

    switch.refresh_from_db()
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["details"]
    assert switch.active


def test_key_switch_belongs_to_the_keys_organization(owner, org):
    tenant = make_tenant(org=org)

    created = owner.post(
        "/api/v1/kill-switches/",
        {
            "organization": org.slug,
            "scope": "key",
            "key": tenant.key_row.pk,
            "reason": "leaked key",
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    assert KillSwitch.objects.get(pk=created.json()["id"]).organization == org


def test_key_of_another_organization_is_not_found(owner, org):
    foreign = make_tenant(org=make_org())

    response = owner.post(
        "/api/v1/kill-switches/",
        {
            "organization": org.slug,
            "scope": "key",
            "key": foreign.key_row.pk,
            "reason": "x",
        },
        format="json",
    )

    assert response.status_code == 404


def test_kill_switch_of_other_organization_gets_404(outsider, org):
    switch = KillSwitch.objects.create(scope="org", organization=org, reason="x")

    assert outsider.get(f"/api/v1/kill-switches/{switch.pk}/").status_code == 404
    assert (
        outsider.post(f"/api/v1/kill-switches/{switch.pk}/release/").status_code == 404
    )


def test_passthrough_flag_is_limited_and_can_be_ended(owner, org):
    now = timezone.now()
    too_long = owner.post(
        "/api/v1/passthrough-flags/",
        {
            "organization": org.slug,
            "bypass_hooks": True,
            "reason": "vendor outage",
            "starts_at": now.isoformat(),
            "expires_at": (now + timedelta(hours=9)).isoformat(),
        },
        format="json",
    )
    created = owner.post(
        "/api/v1/passthrough-flags/",
        {
            "organization": org.slug,
            "bypass_hooks": True,
            "reason": "vendor outage",
            "starts_at": now.isoformat(),
            "expires_at": (now + timedelta(hours=2)).isoformat(),
        },
        format="json",
    )

    assert too_long.status_code == 400
    assert "at most 8 hours" in str(too_long.json()["error"]["details"])
    assert created.status_code == 201, created.content
    flag = PassthroughFlag.objects.get(pk=created.json()["id"])
    assert flag.scope == "org"
    ended = owner.post(
        f"/api/v1/passthrough-flags/{flag.pk}/end/", {"reason": "fixed"}, format="json"
    )
    assert ended.json()["ended_at"] is not None


def test_passthrough_flag_of_other_organization_gets_404(outsider, org):
    now = timezone.now()
    flag = PassthroughFlag.objects.create(
        scope="org",
        organization=org,
        bypass_cache=True,
        reason="x",
        starts_at=now,
        expires_at=now + timedelta(hours=1),
    )

    assert outsider.get(f"/api/v1/passthrough-flags/{flag.pk}/").status_code == 404
    assert outsider.post(f"/api/v1/passthrough-flags/{flag.pk}/end/").status_code == 404
