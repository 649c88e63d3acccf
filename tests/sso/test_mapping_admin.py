"""Claim mappings: validation, and the admin pages being for superusers only."""

import pytest
from django.core.exceptions import ValidationError

from apps.iam.models import AdminAuditLog
from apps.iam.services import create_group
from apps.sso.models import ClaimMapping
from tests.iam.factories import make_member, make_org, make_project


@pytest.fixture
def org(db):
    return make_org()


def test_mapping_needs_role_or_group(org):
    mapping = ClaimMapping(claim_value="x", organization=org)

    with pytest.raises(ValidationError):
        mapping.full_clean()


def test_project_role_needs_project_of_same_org(org):
    other_project = make_project(make_org())
    without = ClaimMapping(claim_value="x", organization=org, role="project_admin")
    elsewhere = ClaimMapping(
        claim_value="x", organization=org, role="project_admin", project=other_project
    )

    with pytest.raises(ValidationError):
        without.full_clean()
    with pytest.raises(ValidationError):
        elsewhere.full_clean()


def test_group_of_other_org_is_rejected(org):
    group = create_group(make_org(), "g")
    mapping = ClaimMapping(claim_value="x", organization=org, group=group)

    with pytest.raises(ValidationError):
        mapping.full_clean()


def test_scim_group_is_rejected(org):
    group = create_group(org, "from-idp", source="scim")
    mapping = ClaimMapping(claim_value="x", organization=org, group=group)

    with pytest.raises(ValidationError):
        mapping.full_clean()


def test_valid_mapping_passes(org):
    mapping = ClaimMapping(claim_value="x", organization=org, role="org_admin")

    mapping.full_clean()


def test_superuser_adds_mapping_and_it_is_audited(org, admin_client):
    response = admin_client.post(
        "/admin/sso/claimmapping/add/",
        {"claim_value": "eng", "organization": org.pk, "role": "developer"},
    )

    assert response.status_code == 302
    mapping = ClaimMapping.objects.get(claim_value="eng")
    entry = AdminAuditLog.objects.get(action="sso:mapping.create")
    assert entry.resource == f"nrn:nexus:sso:{org.slug}:mapping/{mapping.pk}"
    assert entry.organization_id == org.pk


def test_org_owner_cannot_open_mapping_admin(org, client):
    owner = make_member(org, "org_owner", is_staff=True)
    client.force_login(owner)

    response = client.get("/admin/sso/claimmapping/")

    assert response.status_code == 403
