"""Write use cases of OpenID Connect login: find or create the user, sync access."""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.iam.models import SOURCE_OIDC, Group, Membership
from apps.iam.services import grant_role, revoke_role, set_group_members, sync_roles
from apps.sso.claims import claim_values, is_true
from apps.sso.errors import IdentityConflictError
from apps.sso.models import OidcIdentity
from apps.sso.selectors import MappedAccess, RoleKey, list_mapped_groups, resolve_access
from apps.tenancy.models import Organization, Project

logger = logging.getLogger(__name__)

# Reasons a login is rejected. The rejection page explains each one.
REJECTED_NO_ROLE = "no_role"
REJECTED_INACTIVE = "inactive"
REJECTED_CONFLICT = "identity_conflict"

USERNAME_MAX_LENGTH = 150


@dataclass(frozen=True)
class SignInResult:
    """The user a login signs in, or the reason it is rejected."""

    user: AbstractBaseUser | None
    rejection: str | None = None


@transaction.atomic
def sign_in(claims: Mapping[str, Any], *, groups_claim: str) -> SignInResult:
    """Find or create the user for verified claims and sync their mapped access.

    The claims must come from a verified ID token (iss and sub set). A login whose
    groups give no role is rejected, and a known user then loses the access earlier
    logins gave, because the identity provider no longer grants it.
    """
    issuer, subject = claims["iss"], claims["sub"]
    access = resolve_access(claim_values(claims, groups_claim))
    identity = OidcIdentity.objects.filter(issuer=issuer, subject=subject).first()
    try:
        user = identity.user if identity else _find_user_by_email(claims)
    except IdentityConflictError:
        return _reject(REJECTED_CONFLICT)

    if user is not None and not user.is_active:
        return _reject(REJECTED_INACTIVE)
    if not access.grants_role:
        if user is not None:
            sync_mapped_access(user, access)
        return _reject(REJECTED_NO_ROLE)

    if user is None:
        user = _create_user(claims)
    _update_profile(user, claims)
    if identity is None:
        identity = OidcIdentity(issuer=issuer, subject=subject, user=user)
    identity.last_login_at = timezone.now()
    identity.save()
    sync_mapped_access(user, access)
    logger.info("user %s signed in through OpenID Connect", user.pk)
    return SignInResult(user=user)


def sync_mapped_access(user: AbstractBaseUser, access: MappedAccess) -> None:
    """Make the user's OIDC role grants and mapped-group memberships match access.

    Grants from other sources (manual, SCIM) and groups no mapping names stay.
    """
    _sync_org_roles(user, access)
    _sync_project_roles(user, access)
    _sync_groups(user, access)


def _sync_org_roles(user: AbstractBaseUser, access: MappedAccess) -> None:
    wanted: dict[int, set[str]] = {}
    for org_id, role, project_id in access.roles:
        if project_id is None:
            wanted.setdefault(org_id, set()).add(role)
    held = Membership.objects.filter(
        user=user, source=SOURCE_OIDC, project__isnull=True
    ).values_list("organization_id", flat=True)
    org_ids = set(wanted) | set(held)
    for organization in Organization.objects.filter(pk__in=org_ids):
        sync_roles(
            user, organization, wanted.get(organization.pk, set()), source=SOURCE_OIDC
        )


def _sync_project_roles(user: AbstractBaseUser, access: MappedAccess) -> None:
    wanted = {key for key in access.roles if key[2] is not None}
    held_rows = Membership.objects.filter(
        user=user, source=SOURCE_OIDC, project__isnull=False
    ).select_related("organization", "project")
    held: set[RoleKey] = set()
    for row in held_rows:
        key = (row.organization_id, row.role, row.project_id)
        held.add(key)
        if key not in wanted:
            revoke_role(
                user,
                row.organization,
                row.role,
                project=row.project,
                source=SOURCE_OIDC,
            )
    for _, role, project_id in sorted(wanted - held):
        project = Project.objects.select_related("organization").get(pk=project_id)
        grant_role(
            user, project.organization, role, project=project, source=SOURCE_OIDC
        )


def _sync_groups(user: AbstractBaseUser, access: MappedAccess) -> None:
    member_of = set(
        list_mapped_groups().filter(members=user).values_list("pk", flat=True)
    )
    changed = member_of ^ set(access.group_ids)
    for group in Group.objects.filter(pk__in=changed).select_related("organization"):
        members = set(group.members.all())
        if group.pk in access.group_ids:
            members.add(user)
        else:
            members.discard(user)
        set_group_members(group, members)


def _find_user_by_email(claims: Mapping[str, Any]) -> AbstractBaseUser | None:
    """Return the one user with the claims' verified email, or None.

    An unverified address is never used, because anyone may claim one at some
    providers. Raises IdentityConflictError when several users share the address or
    it belongs to a superuser, who is never linked by email.
    """
    email = claims.get("email")
    if (
        not isinstance(email, str)
        or not email
        or not is_true(claims.get("email_verified"))
    ):
        return None
    matches = list(get_user_model().objects.filter(email__iexact=email)[:2])
    if not matches:
        return None
    if len(matches) > 1 or matches[0].is_superuser:
        raise IdentityConflictError(
            "The email address cannot be linked to exactly one user."
        )
    return matches[0]


def _create_user(claims: Mapping[str, Any]) -> AbstractBaseUser:
    """Create the user of a first login, with no usable password."""
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    user = get_user_model().objects.create_user(
        _free_username(claims), email=email, password=None
    )
    logger.info("user %s created on first OpenID Connect login", user.pk)
    return user


def _free_username(claims: Mapping[str, Any]) -> str:
    """Return preferred_username, email or sub, made unique with a random suffix."""
    base = claims["sub"][:USERNAME_MAX_LENGTH]
    for name in ("preferred_username", "email"):
        candidate = claims.get(name)
        if isinstance(candidate, str) and candidate.strip():
            base = candidate.strip()[:USERNAME_MAX_LENGTH]
            break
    users = get_user_model().objects
    if not users.filter(username__iexact=base).exists():
        return base
    while True:
        suffix = "-" + uuid.uuid4().hex[:8]
        candidate = base[: USERNAME_MAX_LENGTH - len(suffix)] + suffix
        if not users.filter(username__iexact=candidate).exists():
            return candidate


def _update_profile(user: AbstractBaseUser, claims: Mapping[str, Any]) -> None:
    """Copy names and email from the claims and give the user admin access."""
    fields = {
        "first_name": claims.get("given_name"),
        "last_name": claims.get("family_name"),
        "email": claims.get("email"),
    }
    for field, value in fields.items():
        if isinstance(value, str) and value:
            limit = user._meta.get_field(field).max_length
            setattr(user, field, value[:limit])
    # Roles decide which admin pages the user can open. is_staff only admits them.
    user.is_staff = True
    user.save()


def _reject(reason: str) -> SignInResult:
    logger.info("OpenID Connect login rejected: %s", reason)
    return SignInResult(user=None, rejection=reason)
