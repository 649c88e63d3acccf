import pytest

from apps.iam.errors import EscalationError, InvalidRoleError, LastOwnerError
from apps.iam.models import Group, Membership
from apps.iam.services import (
    create_group,
    grant_role,
    revoke_role,
    roles_for,
    set_group_members,
    set_group_roles,
    sync_roles,
)
from tests.iam.factories import make_member, make_project, make_user


def test_grant_role_is_idempotent(org):
    user = make_user()

    first = grant_role(user, org, "developer")
    second = grant_role(user, org, "developer")

    assert first.pk == second.pk
    assert [grant.role for grant in roles_for(user, org)] == ["developer"]


def test_grant_role_keeps_one_row_per_source(org):
    user = make_user()

    grant_role(user, org, "viewer", source="manual")
    grant_role(user, org, "viewer", source="oidc")

    assert Membership.objects.filter(user=user, organization=org).count() == 2


def test_unknown_role_is_rejected(org):
    with pytest.raises(InvalidRoleError):
        grant_role(make_user(), org, "superhero")


def test_project_admin_needs_project(org):
    with pytest.raises(InvalidRoleError):
        grant_role(make_user(), org, "project_admin")


def test_project_of_other_org_is_rejected(org, other_org):
    foreign = make_project(other_org)

    with pytest.raises(InvalidRoleError):
        grant_role(make_user(), org, "project_admin", project=foreign)


def test_org_role_takes_no_project(org, project):
    with pytest.raises(InvalidRoleError):
        grant_role(make_user(), org, "developer", project=project)


def test_revoke_role_removes_only_named_source(org):
    user = make_user()
    grant_role(user, org, "viewer", source="manual")
    grant_role(user, org, "viewer", source="scim")

    removed = revoke_role(user, org, "viewer", source="scim")

    assert removed == 1
    assert [grant.source for grant in roles_for(user, org)] == ["manual"]


def test_group_roles_reach_members(org, project):
    user = make_user()
    group = create_group(org, "platform", roles=[("project_admin", project)])

    set_group_members(group, [user])

    grants = roles_for(user, org)
    assert [(grant.role, grant.project_id) for grant in grants] == [
        ("project_admin", project.pk)
    ]
    assert grants[0].group_id == group.pk


def test_group_members_are_replaced(org):
    first, second = make_user(), make_user()
    group = create_group(org, "team", roles=[("viewer", None)])
    set_group_members(group, [first])

    set_group_members(group, [second])

    assert list(group.members.all()) == [second]
    assert roles_for(first, org) == []


def test_sync_roles_replaces_one_source(org):
    user = make_user()
    grant_role(user, org, "viewer", source="manual")
    sync_roles(user, org, ["developer", "auditor"], source="oidc")

    sync_roles(user, org, ["auditor"], source="oidc")

    held = sorted((grant.role, grant.source) for grant in roles_for(user, org))
    assert held == [("auditor", "oidc"), ("viewer", "manual")]


def test_admin_cannot_grant_owner(org):
    admin = make_member(org, "org_admin")

    with pytest.raises(EscalationError):
        grant_role(make_user(), org, "org_owner", actor=admin)


def test_admin_can_grant_developer(org):
    admin = make_member(org, "org_admin")
    user = make_user()

    grant_role(user, org, "developer", actor=admin)

    assert [grant.role for grant in roles_for(user, org)] == ["developer"]


def test_developer_cannot_grant_auditor(org):
    developer = make_member(org, "developer")

    with pytest.raises(EscalationError):
        grant_role(make_user(), org, "auditor", actor=developer)


def test_project_admin_cannot_grant_other_project(org, project):
    other = make_project(org)
    admin = make_member(org, "project_admin", project=project)

    with pytest.raises(EscalationError):
        grant_role(make_user(), org, "project_admin", project=other, actor=admin)


def test_admin_cannot_revoke_owner(org):
    owner = make_member(org, "org_owner")
    make_member(org, "org_owner")
    admin = make_member(org, "org_admin")

    with pytest.raises(EscalationError):
        revoke_role(owner, org, "org_owner", actor=admin)


def test_member_of_other_org_cannot_grant(org, other_org):
    outsider = make_member(other_org, "org_owner")

    with pytest.raises(EscalationError):
        grant_role(make_user(), org, "viewer", actor=outsider)


def test_admin_cannot_add_members_to_owner_group(org):
    admin = make_member(org, "org_admin")
    group = create_group(org, "owners", roles=[("org_owner", None)])

    with pytest.raises(EscalationError):
        set_group_members(group, [admin], actor=admin)

    assert not group.members.exists()


def test_admin_cannot_give_group_owner_role(org):
    admin = make_member(org, "org_admin")
    group = create_group(org, "devs", roles=[("developer", None)])

    with pytest.raises(EscalationError):
        set_group_roles(group, [("org_owner", None)], actor=admin)

    assert list(group.roles.values_list("role", flat=True)) == ["developer"]


def test_last_owner_cannot_be_revoked(org):
    owner = make_member(org, "org_owner")

    with pytest.raises(LastOwnerError):
        revoke_role(owner, org, "org_owner", actor=owner)

    assert Membership.objects.filter(user=owner, role="org_owner").exists()


def test_owner_can_leave_when_another_remains(org):
    owner = make_member(org, "org_owner")
    make_member(org, "org_owner")

    removed = revoke_role(owner, org, "org_owner", actor=owner)

    assert removed == 1


def test_system_may_remove_last_owner(org):
    owner = make_member(org, "org_owner")

    removed = revoke_role(owner, org, "org_owner")

    assert removed == 1


def test_group_deletion_keeps_an_owner(org):
    owner = make_user()
    group = create_group(org, "owners", roles=[("org_owner", None)])
    set_group_members(group, [owner])

    with pytest.raises(LastOwnerError):
        set_group_members(group, [], actor=owner)

    assert Group.objects.get(pk=group.pk).members.count() == 1
