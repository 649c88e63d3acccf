"""Read queries for identity and access."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from apps.iam.models import GroupRole, Membership, Policy, ResourceTags, UserTags
from apps.iam.roles import ORG_OWNER
from apps.tenancy.models import Organization


@dataclass(frozen=True)
class RoleGrant:
    """One role a user has in an organization, directly or through a group."""

    role: str
    project_id: int | None
    source: str
    group_id: int | None = None


def roles_for(user: AbstractBaseUser, organization: Organization) -> list[RoleGrant]:
    """Return every role the user has in the organization, direct grants first."""
    if not user.is_authenticated:
        return []
    grants = [
        RoleGrant(role=row.role, project_id=row.project_id, source=row.source)
        for row in Membership.objects.filter(user=user, organization=organization)
    ]
    group_roles = GroupRole.objects.filter(
        group__organization=organization, group__members=user
    ).select_related("group")
    grants.extend(
        RoleGrant(
            role=row.role,
            project_id=row.project_id,
            source=row.group.source,
            group_id=row.group_id,
        )
        for row in group_roles
    )
    return grants


def list_member_organizations(user: AbstractBaseUser) -> QuerySet[Organization]:
    """Return the organizations where the user has at least one role."""
    if not user.is_authenticated:
        return Organization.objects.none()
    # Two IN subqueries instead of a UNION: SQLite rejects the ORDER BY that the
    # models' default ordering puts into each part of a compound statement.
    direct = Membership.objects.filter(user=user).order_by().values("organization_id")
    via_group = (
        GroupRole.objects.filter(group__members=user)
        .order_by()
        .values("group__organization_id")
    )
    return Organization.objects.filter(Q(pk__in=direct) | Q(pk__in=via_group))


def list_group_ids(user: AbstractBaseUser, organization: Organization) -> set[int]:
    """Return the ids of the user's groups in the organization."""
    if not user.is_authenticated:
        return set()
    return set(
        user.iam_groups.filter(organization=organization).values_list("pk", flat=True)
    )


def list_enabled_policies(organization_id: int) -> list[Policy]:
    """Return the organization's enabled policies."""
    return list(Policy.objects.filter(organization_id=organization_id, enabled=True))


def get_user_tags(user: AbstractBaseUser, organization_id: int) -> dict[str, object]:
    """Return the user's tags in the organization (empty when none are set)."""
    if not user.is_authenticated:
        return {}
    row = UserTags.objects.filter(organization_id=organization_id, user=user).first()
    return dict(row.tags) if row else {}


def get_resource_tags(resource: str) -> dict[str, object]:
    """Return the tags on the resource name (empty when none are set)."""
    row = ResourceTags.objects.filter(resource=resource).first()
    return dict(row.tags) if row else {}


def count_owners(organization: Organization) -> int:
    """Return how many distinct users hold the owner role in the organization."""
    direct = Membership.objects.filter(
        organization=organization, role=ORG_OWNER
    ).values("user_id")
    via_group = GroupRole.objects.filter(
        group__organization=organization, role=ORG_OWNER
    ).values_list("group__members", flat=True)
    owners = set(direct.values_list("user_id", flat=True))
    owners.update(user_id for user_id in via_group if user_id is not None)
    return len(owners)
