"""Write use cases for role grants and groups.

Every function takes an optional `actor`. With an actor, the escalation check runs:
the actor must hold every permission the change grants. Without one the caller is the
system (OIDC login, SCIM provisioning), which is trusted. Callers authorize the action
itself (for example `iam:membership.create`) before calling.
"""

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from apps.iam.context import AccessContext
from apps.iam.errors import InvalidRoleError, LastOwnerError
from apps.iam.escalation import ensure_can_grant
from apps.iam.evaluator import Actor
from apps.iam.models import SOURCE_CHOICES, SOURCE_MANUAL, Group, GroupRole, Membership
from apps.iam.roles import (
    PROJECT_SCOPED_ROLES,
    ROLE_PERMISSIONS,
    permissions_of,
)
from apps.iam.selectors import RoleGrant, count_owners, roles_for
from apps.tenancy.models import Organization, Project

logger = logging.getLogger(__name__)

__all__ = [
    "create_group",
    "delete_group",
    "grant_role",
    "revoke_role",
    "roles_for",
    "set_group_members",
    "set_group_roles",
    "sync_roles",
]

RoleSpec = tuple[str, Project | None]


def validate_role(
    role: str, organization: Organization, project: Project | None
) -> None:
    """Raise InvalidRoleError unless role is built in and its project scope fits it."""
    if role not in ROLE_PERMISSIONS:
        raise InvalidRoleError(
            f'Unknown role "{role}". Use one of: {", ".join(ROLE_PERMISSIONS)}.',
            param="role",
        )
    if role in PROJECT_SCOPED_ROLES and project is None:
        raise InvalidRoleError(f'Role "{role}" needs a project.', param="project")
    if role not in PROJECT_SCOPED_ROLES and project is not None:
        raise InvalidRoleError(
            f'Role "{role}" applies to the whole organization and takes no project.',
            param="project",
        )
    if project is not None and project.organization_id != organization.pk:
        raise InvalidRoleError(
            f'Project "{project.slug}" does not belong to organization "{organization.slug}".',
            param="project",
        )


def _validate_source(source: str) -> None:
    if source not in dict(SOURCE_CHOICES):
        raise InvalidRoleError(f'Unknown grant source "{source}".', param="source")


def grant_role(
    user: AbstractBaseUser,
    organization: Organization,
    role: str,
    *,
    source: str = SOURCE_MANUAL,
    project: Project | None = None,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> Membership:
    """Grant role to user in the organization (or project); repeat calls change nothing."""
    validate_role(role, organization, project)
    _validate_source(source)
    ensure_can_grant(
        actor, organization, permissions_of(role), project=project, context=context
    )

    membership, created = Membership.objects.get_or_create(
        user=user, organization=organization, role=role, project=project, source=source
    )
    if created:
        logger.info(
            "role %s granted to user %s from %s",
            role,
            user.pk,
            source,
            extra={"tenant_id": organization.pk},
        )
    return membership


@transaction.atomic
def revoke_role(
    user: AbstractBaseUser,
    organization: Organization,
    role: str,
    *,
    project: Project | None = None,
    source: str | None = None,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> int:
    """Remove the user's direct grants of role and return how many rows went.

    With source None every source's grant goes, otherwise only that source's. Revoking
    needs the same permissions as granting, so an admin cannot remove an owner.
    """
    ensure_can_grant(
        actor, organization, permissions_of(role), project=project, context=context
    )
    owners_before = count_owners(organization)
    rows = Membership.objects.filter(
        user=user, organization=organization, role=role, project=project
    )
    if source is not None:
        rows = rows.filter(source=source)

    deleted, _ = rows.delete()
    if deleted:
        _ensure_owner_remains(organization, owners_before, actor)
        logger.info(
            "role %s revoked from user %s",
            role,
            user.pk,
            extra={"tenant_id": organization.pk},
        )
    return deleted


def _ensure_owner_remains(
    organization: Organization, owners_before: int, actor: Actor | None
) -> None:
    """Raise LastOwnerError when a person's change left the organization without owner.

    Runs inside the caller's transaction, so raising undoes the change. Changes by the
    system (a None actor, such as SCIM deprovisioning) may remove the last owner,
    because the identity provider is the source of truth for them.
    """
    if actor is None or owners_before == 0:
        return
    if count_owners(organization) == 0:
        raise LastOwnerError(
            f'Organization "{organization.slug}" must keep at least one owner.'
        )


@transaction.atomic
def sync_roles(
    user: AbstractBaseUser,
    organization: Organization,
    roles: Iterable[str],
    *,
    source: str,
) -> list[RoleGrant]:
    """Make the user's organization-wide grants from source exactly roles.

    Grants from other sources stay. Used by identity-provider logins and provisioning,
    which are trusted, so no escalation check runs. Returns the user's grants after.
    """
    _validate_source(source)
    wanted = set(roles)
    for role in wanted:
        validate_role(role, organization, None)
    current = Membership.objects.filter(
        user=user, organization=organization, source=source, project__isnull=True
    )
    for membership in current:
        if membership.role not in wanted:
            revoke_role(user, organization, membership.role, source=source)
    for role in sorted(wanted):
        grant_role(user, organization, role, source=source)
    return roles_for(user, organization)


def create_group(
    organization: Organization,
    name: str,
    *,
    source: str = SOURCE_MANUAL,
    external_id: str = "",
    roles: Iterable[RoleSpec] = (),
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> Group:
    """Create a group in the organization with the given roles."""
    _validate_source(source)
    with transaction.atomic():
        group = Group.objects.create(
            organization=organization, name=name, source=source, external_id=external_id
        )
        set_group_roles(group, roles, actor=actor, context=context)
    return group


@transaction.atomic
def set_group_roles(
    group: Group,
    roles: Iterable[RoleSpec],
    *,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> None:
    """Replace the roles the group grants; the actor must hold every role it changes."""
    wanted = {
        (role, project.pk if project else None): project for role, project in roles
    }
    existing = {
        (row.role, row.project_id): row for row in group.roles.select_related("project")
    }
    for (role, _), project in wanted.items():
        validate_role(role, group.organization, project)
    added = [
        (role, wanted[(role, pid)]) for role, pid in wanted.keys() - existing.keys()
    ]
    removed = [existing[key] for key in existing.keys() - wanted.keys()]
    for role, project in added + [(row.role, row.project) for row in removed]:
        ensure_can_grant(
            actor,
            group.organization,
            permissions_of(role),
            project=project,
            context=context,
        )

    owners_before = count_owners(group.organization)
    for role, project in added:
        GroupRole.objects.create(group=group, role=role, project=project)
    for row in removed:
        row.delete()
    _ensure_owner_remains(group.organization, owners_before, actor)


@transaction.atomic
def set_group_members(
    group: Group,
    users: Iterable[AbstractBaseUser],
    *,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> None:
    """Replace the group's members; the actor must hold every role the group grants."""
    members = list(users)
    current = set(group.members.values_list("pk", flat=True))
    if {user.pk for user in members} != current:
        for row in group.roles.select_related("project"):
            ensure_can_grant(
                actor,
                group.organization,
                permissions_of(row.role),
                project=row.project,
                context=context,
            )
    owners_before = count_owners(group.organization)
    group.members.set(members)
    _ensure_owner_remains(group.organization, owners_before, actor)
    logger.info(
        "group %s now has %s members",
        group.pk,
        len(members),
        extra={"tenant_id": group.organization_id},
    )


@transaction.atomic
def delete_group(
    group: Group, *, actor: Actor | None = None, context: AccessContext | None = None
) -> None:
    """Delete the group; its members lose the roles it granted."""
    for row in group.roles.select_related("project"):
        ensure_can_grant(
            actor,
            group.organization,
            permissions_of(row.role),
            project=row.project,
            context=context,
        )
    group.delete()
