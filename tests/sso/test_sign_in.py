"""sign_in: user lookup and creation, role and group sync, and rejections."""

import uuid

import pytest
from django.contrib.auth import get_user_model

from apps.iam.models import Membership
from apps.iam.selectors import roles_for
from apps.iam.services import create_group, grant_role
from apps.sso.models import ClaimMapping, OidcIdentity
from apps.sso.services import sign_in
from tests.iam.factories import make_org, make_project, make_user

ISSUER = "https://idp.example.test"


def claims(subject: str | None = None, groups=(), **extra) -> dict:
    subject = subject or uuid.uuid4().hex
    data = {
        "iss": ISSUER,
        "sub": subject,
        "email": f"{subject}@example.test",
        "email_verified": True,
        "groups": list(groups),
    }
    data.update(extra)
    return data


@pytest.fixture
def org(db):
    return make_org()


def held(user, org) -> list[tuple[str, str]]:
    return sorted((grant.role, grant.source) for grant in roles_for(user, org))


def test_first_login_creates_linked_staff_user(org):
    ClaimMapping.objects.create(claim_value="eng", organization=org, role="developer")

    result = sign_in(
        claims("alice", ["eng"], given_name="Alice"), groups_claim="groups"
    )

    user = result.user
    assert result.rejection is None
    assert user.username == "alice@example.test"
    assert user.first_name == "Alice"
    assert user.is_staff
    assert not user.is_superuser
    assert OidcIdentity.objects.get(issuer=ISSUER, subject="alice").user == user
    assert held(user, org) == [("developer", "oidc")]


def test_unmapped_groups_create_no_user(org):
    result = sign_in(claims("bob", ["nobody-maps-this"]), groups_claim="groups")

    assert result.user is None
    assert result.rejection == "no_role"
    assert not get_user_model().objects.filter(username__startswith="bob").exists()


def test_group_without_roles_is_rejected(org):
    group = create_group(org, "empty")
    ClaimMapping.objects.create(claim_value="empty", organization=org, group=group)

    result = sign_in(claims(groups=["empty"]), groups_claim="groups")

    assert result.rejection == "no_role"


def test_mapped_group_with_roles_is_joined(org):
    group = create_group(org, "devs", roles=[("developer", None)])
    ClaimMapping.objects.create(claim_value="devs", organization=org, group=group)

    user = sign_in(claims(groups=["devs"]), groups_claim="groups").user

    assert group.members.filter(pk=user.pk).exists()
    assert held(user, org) == [("developer", "manual")]


def test_project_role_mapping_is_granted_and_revoked(org):
    project = make_project(org)
    ClaimMapping.objects.create(
        claim_value="web", organization=org, role="project_admin", project=project
    )
    ClaimMapping.objects.create(claim_value="all", organization=org, role="viewer")
    subject = uuid.uuid4().hex

    user = sign_in(claims(subject, ["web", "all"]), groups_claim="groups").user
    assert Membership.objects.filter(
        user=user, role="project_admin", project=project, source="oidc"
    ).exists()
    sign_in(claims(subject, ["all"]), groups_claim="groups")

    assert not Membership.objects.filter(user=user, project=project).exists()
    assert held(user, org) == [("viewer", "oidc")]


def test_resync_keeps_grants_from_other_sources(org):
    ClaimMapping.objects.create(claim_value="a", organization=org, role="auditor")
    subject = uuid.uuid4().hex
    user = sign_in(claims(subject, ["a"]), groups_claim="groups").user
    grant_role(user, org, "viewer")

    result = sign_in(claims(subject, []), groups_claim="groups")

    assert result.rejection == "no_role"
    assert held(user, org) == [("viewer", "manual")]


def test_roles_are_synced_per_organization(org):
    other = make_org()
    ClaimMapping.objects.create(claim_value="x", organization=org, role="viewer")
    ClaimMapping.objects.create(claim_value="y", organization=other, role="org_admin")
    subject = uuid.uuid4().hex
    user = sign_in(claims(subject, ["x", "y"]), groups_claim="groups").user

    sign_in(claims(subject, ["x"]), groups_claim="groups")

    assert held(user, org) == [("viewer", "oidc")]
    assert held(user, other) == []


def test_verified_email_links_existing_user(org):
    ClaimMapping.objects.create(claim_value="eng", organization=org, role="viewer")
    existing = make_user(email="carol@example.test")

    result = sign_in(
        claims("carol-sub", ["eng"], email="carol@example.test"), groups_claim="groups"
    )

    assert result.user == existing
    assert OidcIdentity.objects.get(subject="carol-sub").user == existing


def test_unverified_email_does_not_link(org):
    ClaimMapping.objects.create(claim_value="eng", organization=org, role="viewer")
    existing = make_user(email="dave@example.test")

    result = sign_in(
        claims("dave-sub", ["eng"], email="dave@example.test", email_verified=False),
        groups_claim="groups",
    )

    assert result.user != existing
    assert result.user.username != existing.username


def test_superuser_email_is_never_linked(org):
    ClaimMapping.objects.create(claim_value="eng", organization=org, role="viewer")
    make_user(email="root@example.test", is_superuser=True)

    result = sign_in(
        claims("root-sub", ["eng"], email="root@example.test"), groups_claim="groups"
    )

    assert result.rejection == "identity_conflict"


def test_deactivated_user_is_rejected(org):
    ClaimMapping.objects.create(claim_value="eng", organization=org, role="viewer")
    subject = uuid.uuid4().hex
    user = sign_in(claims(subject, ["eng"]), groups_claim="groups").user
    user.is_active = False
    user.save()

    result = sign_in(claims(subject, ["eng"]), groups_claim="groups")

    assert result.rejection == "inactive"


def test_taken_username_gets_a_suffix(org):
    ClaimMapping.objects.create(claim_value="eng", organization=org, role="viewer")
    make_user("erin")

    user = sign_in(
        claims(groups=["eng"], preferred_username="erin", email_verified=False),
        groups_claim="groups",
    ).user

    assert user.username.startswith("erin-")


def test_string_group_claim_is_one_value(org):
    ClaimMapping.objects.create(claim_value="solo", organization=org, role="viewer")

    result = sign_in(claims(groups=[]) | {"roles": "solo"}, groups_claim="roles")

    assert result.rejection is None
