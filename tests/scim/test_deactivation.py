"""Deactivating a SCIM user ends their sessions and revokes their personal keys."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from apps.keys.models import VirtualKey
from apps.keys.services import issue_key
from apps.scim.models import ScimUser
from tests.scim.conftest import user_body

# A page that needs a signed-in session: the REST API returns 401 without one.
SIGNED_IN_PAGE = "/api/v1/roles/"


@pytest.fixture
def signed_in(scim, org):
    """A SCIM user who is signed in to the admin and owns one key."""
    created = scim.post("/Users", user_body("leaver@example.test")).json()
    user = ScimUser.objects.get(scim_id=created["id"]).user
    user.is_staff = True
    user.save()
    browser = Client()
    browser.force_login(user)
    personal = issue_key(organization=org, name="personal", owner=user).key
    shared = issue_key(organization=org, name="shared").key
    return created["id"], user, browser, personal, shared


def assert_cut_off(user, browser, personal, shared) -> None:
    user.refresh_from_db()
    assert not user.is_active
    assert Session.objects.filter(session_key=browser.session.session_key).count() == 0
    assert browser.get(SIGNED_IN_PAGE).status_code == 401
    assert VirtualKey.objects.get(pk=personal.pk).revoked_at is not None
    assert VirtualKey.objects.get(pk=shared.pk).revoked_at is None


def test_session_works_before_deactivation(signed_in):
    _, _, browser, _, _ = signed_in

    assert browser.get(SIGNED_IN_PAGE).status_code == 200


def test_active_false_ends_sessions_and_revokes_keys(scim, signed_in):
    scim_id, user, browser, personal, shared = signed_in

    response = scim.patch(
        f"/Users/{scim_id}", [{"op": "replace", "path": "active", "value": False}]
    )

    assert response.status_code == 200
    assert_cut_off(user, browser, personal, shared)


def test_put_with_active_false_deactivates(scim, signed_in):
    scim_id, user, browser, personal, shared = signed_in

    response = scim.put(
        f"/Users/{scim_id}", user_body("leaver@example.test", active=False)
    )

    assert response.status_code == 200
    assert_cut_off(user, browser, personal, shared)


def test_delete_ends_sessions_and_revokes_keys(scim, signed_in):
    scim_id, user, browser, personal, shared = signed_in

    response = scim.delete(f"/Users/{scim_id}")

    assert response.status_code == 204
    assert_cut_off(user, browser, personal, shared)


def test_reactivation_keeps_keys_revoked(scim, signed_in):
    scim_id, user, _, personal, _ = signed_in
    scim.patch(
        f"/Users/{scim_id}", [{"op": "replace", "path": "active", "value": False}]
    )

    response = scim.patch(
        f"/Users/{scim_id}", [{"op": "replace", "path": "active", "value": True}]
    )

    user.refresh_from_db()
    assert response.json()["active"] is True
    assert user.is_active
    assert VirtualKey.objects.get(pk=personal.pk).revoked_at is not None
