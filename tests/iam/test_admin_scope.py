"""Django admin pages scoped by organization and authorized by the IAM evaluator."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.iam.changelog import MASK
from apps.iam.models import AdminAuditLog
from apps.keys.models import VirtualKey
from apps.keys.services import issue_key
from apps.providers.models import ProviderConnection
from tests.iam.factories import make_member, make_user


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def keys(org, other_org):
    return {
        "mine": issue_key(organization=org, name="mine").key,
        "theirs": issue_key(organization=other_org, name="theirs").key,
    }


def change_url(obj) -> str:
    return reverse(
        f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]
    )


def test_changelist_shows_only_own_org(org, keys):
    staff = make_member(org, "developer", is_staff=True)

    response = admin_client(staff).get(reverse("admin:keys_virtualkey_changelist"))

    assert response.status_code == 200
    assert "mine" in response.content.decode()
    assert "theirs" not in response.content.decode()


def test_other_org_row_is_not_found(org, keys):
    staff = make_member(org, "org_owner", is_staff=True)

    response = admin_client(staff).get(change_url(keys["theirs"]))

    # Django admin redirects to its index for a row outside the queryset.
    assert response.status_code == 302
    assert response.url == reverse("admin:index")


def test_other_org_is_not_in_organization_choices(org, other_org, keys):
    staff = make_member(org, "org_owner", is_staff=True)

    response = admin_client(staff).get(reverse("admin:keys_virtualkey_add"))

    assert response.status_code == 200
    assert (
        org.slug in response.content.decode() or org.name in response.content.decode()
    )
    assert other_org.name not in response.content.decode()


def test_viewer_cannot_change_key(org, keys):
    staff = make_member(org, "viewer", is_staff=True)
    key = keys["mine"]

    response = admin_client(staff).post(
        change_url(key), {"organization": org.pk, "name": "renamed"}
    )

    assert response.status_code == 403
    key.refresh_from_db()
    assert key.name == "mine"


def test_auditor_sees_no_keys_module(org, keys):
    staff = make_member(org, "auditor", is_staff=True)

    response = admin_client(staff).get(reverse("admin:keys_virtualkey_changelist"))

    assert response.status_code == 403


def test_revoke_action_is_audited(org, keys):
    staff = make_member(org, "developer", is_staff=True)
    key = keys["mine"]

    response = admin_client(staff).post(
        reverse("admin:keys_virtualkey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk, keys["theirs"].pk]},
    )

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert VirtualKey.objects.get(pk=keys["theirs"].pk).revoked_at is None
    entry = AdminAuditLog.objects.get(action="keys:key.revoke")
    assert entry.channel == "admin"
    assert entry.actor_user == staff
    assert entry.before["revoked_at"] is None
    assert entry.after["revoked_at"] is not None
    assert entry.after["digest"] == MASK


def test_connection_change_masks_credential(db):
    root = make_user(is_staff=True, is_superuser=True)
    client = admin_client(root)

    response = client.post(
        reverse("admin:providers_providerconnection_add"),
        {
            "name": "openai-main",
            "provider_type": "openai",
            "base_url": "",
            "region": "",
            "options": "{}",
            "enabled": "on",
            "credential": "sk-super-secret",
        },
    )

    assert response.status_code == 302, response.content
    connection = ProviderConnection.objects.get(name="openai-main")
    entry = AdminAuditLog.objects.get(action="providers:connection.create")
    assert entry.after["credential_ciphertext"] == MASK
    assert "sk-super-secret" not in str(entry.after)
    assert connection.credential_ciphertext not in str(entry.after)


def test_owner_cannot_change_shared_connection(org):
    staff = make_member(org, "org_owner", is_staff=True)
    connection = ProviderConnection.objects.create(
        name="shared", provider_type="openai"
    )

    response = admin_client(staff).post(
        change_url(connection), {"name": "hijacked", "provider_type": "openai"}
    )

    assert response.status_code == 403
    connection.refresh_from_db()
    assert connection.name == "shared"


def test_admin_audit_log_is_read_only(org):
    staff = make_member(org, "org_owner", is_staff=True)
    client = admin_client(staff)

    add = client.get(reverse("admin:iam_adminauditlog_add"))
    listing = client.get(reverse("admin:iam_adminauditlog_changelist"))

    assert add.status_code == 403
    assert listing.status_code == 200


def test_admin_cannot_grant_owner_in_admin(org):
    staff = make_member(org, "org_admin", is_staff=True)
    target = make_user()

    response = admin_client(staff).post(
        reverse("admin:iam_membership_add"),
        {"user": target.pk, "organization": org.pk, "role": "org_owner"},
    )

    assert response.status_code == 403
    assert not target.memberships.exists()


def test_org_list_is_scoped(org, other_org):
    staff = make_member(org, "viewer", is_staff=True)

    response = admin_client(staff).get(reverse("admin:tenancy_organization_changelist"))

    assert org.name in response.content.decode()
    assert other_org.name not in response.content.decode()


def test_admin_grants_developer_in_admin(org):
    staff = make_member(org, "org_admin", is_staff=True)
    target = make_user()

    response = admin_client(staff).post(
        reverse("admin:iam_membership_add"),
        {"user": target.pk, "organization": org.pk, "role": "developer"},
    )

    assert response.status_code == 302
    assert list(target.memberships.values_list("role", flat=True)) == ["developer"]
    entry = AdminAuditLog.objects.get(action="iam:membership.create")
    assert entry.after["role"] == "developer"
