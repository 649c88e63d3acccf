"""Read queries for single sign-on."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from apps.iam.models import Group, GroupRole
from apps.sso.models import ClaimMapping

# (organization id, role, project id or None)
RoleKey = tuple[int, str, int | None]


@dataclass(frozen=True)
class MappedAccess:
    """The roles and groups that a login's claim values map to."""

    roles: frozenset[RoleKey]
    group_ids: frozenset[int]
    # Whether any mapped group grants at least one role of its own.
    groups_grant_roles: bool

    @property
    def grants_role(self) -> bool:
        return bool(self.roles) or self.groups_grant_roles

    @property
    def organization_ids(self) -> frozenset[int]:
        return frozenset(org_id for org_id, _, _ in self.roles)


def resolve_access(claim_values: Iterable[str]) -> MappedAccess:
    """Return what the claim mappings give to a user with these claim values."""
    values = sorted(set(claim_values))
    mappings = ClaimMapping.objects.filter(claim_value__in=values) if values else []
    roles: set[RoleKey] = set()
    group_ids: set[int] = set()
    for mapping in mappings:
        if mapping.role:
            roles.add((mapping.organization_id, mapping.role, mapping.project_id))
        if mapping.group_id is not None:
            group_ids.add(mapping.group_id)
    groups_grant_roles = (
        bool(group_ids) and GroupRole.objects.filter(group_id__in=group_ids).exists()
    )
    return MappedAccess(
        roles=frozenset(roles),
        group_ids=frozenset(group_ids),
        groups_grant_roles=groups_grant_roles,
    )


def list_mapped_groups() -> QuerySet[Group]:
    """Return the IAM groups whose members single sign-on manages."""
    return Group.objects.filter(sso_mappings__isnull=False).distinct()
