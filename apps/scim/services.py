"""Write use cases of SCIM provisioning: users, groups and deactivation.

The identity provider is trusted for its own organization, so IAM services are
called without an actor (no escalation check). Roles follow group membership:
a SCIM group is an IAM group, and the roles an administrator gives that group
(GroupRole) are what its members hold.
"""

import logging
from importlib import import_module
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.iam import nrn
from apps.iam import services as iam
from apps.iam.changelog import record_change
from apps.iam.context import AccessContext
from apps.iam.models import SOURCE_SCIM, AdminAuditLog, Group, Membership
from apps.keys.models import VirtualKey
from apps.keys.services import revoke_key
from apps.scim.documents import require_string
from apps.scim.errors import InvalidValueError, UniquenessError
from apps.scim.models import ScimGroup, ScimUser
from apps.scim.selectors import group_document, user_document
from apps.tenancy.models import Organization

logger = logging.getLogger(__name__)

USERNAME_MAX_LENGTH = 150
_DB_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


@transaction.atomic
def provision_user(
    organization: Organization, document: dict[str, Any], *, context: AccessContext
) -> ScimUser:
    """Create the SCIM user of document, or adopt an unlinked Nexus user of that name.

    A Nexus user with the same username is adopted only when it is no superuser and
    has roles in no other organization. Anything else is a uniqueness conflict.
    """
    username = _username(document)
    user = get_user_model().objects.filter(username__iexact=username).first()
    if user is None:
        user = get_user_model().objects.create_user(username, password=None)
    elif not _adoptable(user, organization):
        raise UniquenessError(f'userName "{username}" is already taken.')

    scim_user = ScimUser(organization=organization, user=user)
    _store(scim_user, document)
    _audit(scim_user, "create", None, context)
    logger.info(
        "SCIM user %s provisioned",
        scim_user.scim_id,
        extra={"tenant_id": organization.pk},
    )
    return scim_user


@transaction.atomic
def replace_user(
    scim_user: ScimUser, document: dict[str, Any], *, context: AccessContext
) -> ScimUser:
    """Replace the user's attributes with document (a PUT or a patched document)."""
    username = _username(document)
    taken = (
        get_user_model()
        .objects.filter(username__iexact=username)
        .exclude(pk=scim_user.user_id)
        .exists()
    )
    if taken:
        raise UniquenessError(f'userName "{username}" is already taken.')
    before = user_document(scim_user)
    _store(scim_user, document)
    _audit(scim_user, "update", before, context)
    return scim_user


@transaction.atomic
def delete_user(scim_user: ScimUser, *, context: AccessContext) -> None:
    """Deprovision the user: leave the organization's SCIM groups and deactivate.

    The Nexus user row stays, deactivated, so audit records keep naming it.
    """
    user = scim_user.user
    for scim_group in ScimGroup.objects.filter(
        organization=scim_user.organization, group__members=user
    ).select_related("group"):
        members = [
            member for member in scim_group.group.members.all() if member != user
        ]
        iam.set_group_members(scim_group.group, members)
    before = user_document(scim_user)
    _audit(scim_user, "delete", before, context)
    scim_user.delete()
    deactivate_user(user)


def deactivate_user(user: AbstractBaseUser) -> None:
    """Deactivate the user, end every session and revoke their personal keys.

    Changing the password hash invalidates sessions in every session backend,
    because Django compares a hash of it on each request. Rows of database-backed
    sessions are deleted as well. Repeat calls change nothing more.
    """
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["is_active", "password"])
    ended = _delete_sessions(user)
    revoked = 0
    for key in VirtualKey.objects.filter(owner=user, revoked_at__isnull=True):
        revoke_key(key)
        revoked += 1
    logger.info(
        "user %s deactivated: %s sessions ended, %s keys revoked",
        user.pk,
        ended,
        revoked,
    )


def _delete_sessions(user: AbstractBaseUser) -> int:
    if settings.SESSION_ENGINE not in _DB_SESSION_ENGINES:
        return 0
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    # NOTE: sessions are not indexed by user, so this reads every live session.
    live = Session.objects.filter(expire_date__gt=timezone.now())
    for session in live.iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


def _username(document: dict[str, Any]) -> str:
    username = require_string(document, "userName").strip()
    if len(username) > USERNAME_MAX_LENGTH:
        raise InvalidValueError(
            f"userName is longer than {USERNAME_MAX_LENGTH} characters."
        )
    return username


def _adoptable(user: AbstractBaseUser, organization: Organization) -> bool:
    if user.is_superuser or hasattr(user, "scim_identity"):
        return False
    elsewhere = Membership.objects.filter(user=user).exclude(organization=organization)
    groups_elsewhere = user.iam_groups.exclude(organization=organization)
    return not elsewhere.exists() and not groups_elsewhere.exists()


def _store(scim_user: ScimUser, document: dict[str, Any]) -> None:
    """Save document on the SCIM row and mirror it onto the Nexus user."""
    was_active = scim_user.pk is None or scim_user.user.is_active
    scim_user.external_id = document.get("externalId")
    scim_user.display_name = document.get("displayName")
    scim_user.name = document.get("name")
    scim_user.emails = document.get("emails", [])
    scim_user.active = document.get("active")
    scim_user.save()

    user = scim_user.user
    name = document.get("name") or {}
    user.username = _username(document)
    user.first_name = name.get("givenName", "")[:150]
    user.last_name = name.get("familyName", "")[:150]
    user.email = _primary_email(document.get("emails", []))
    user.is_active = scim_user.active is not False
    user.save()
    if was_active and not user.is_active:
        deactivate_user(user)


def _primary_email(emails: list[dict[str, Any]]) -> str:
    """Return the primary (else first) valid email address, or ""."""
    ordered = sorted(emails, key=lambda item: item.get("primary") is not True)
    for item in ordered:
        value = item.get("value", "")
        try:
            EmailValidator()(value)
        except ValidationError:
            continue
        return value[:254]
    return ""


@transaction.atomic
def create_group(
    organization: Organization, document: dict[str, Any], *, context: AccessContext
) -> ScimGroup:
    """Create an IAM group with the document's name and members."""
    name = _group_name(organization, document, exclude=None)
    members = _members(organization, document)
    try:
        with transaction.atomic():
            group = iam.create_group(
                organization,
                name,
                source=SOURCE_SCIM,
                external_id=document.get("externalId") or "",
            )
    except IntegrityError:
        raise UniquenessError(f'displayName "{name}" is already taken.') from None
    iam.set_group_members(group, members)
    scim_group = ScimGroup.objects.create(organization=organization, group=group)
    _audit(scim_group, "create", None, context)
    return scim_group


@transaction.atomic
def replace_group(
    scim_group: ScimGroup, document: dict[str, Any], *, context: AccessContext
) -> ScimGroup:
    """Rename the group and replace its external id and members with document's."""
    group = scim_group.group
    before = group_document(scim_group)
    group.name = _group_name(scim_group.organization, document, exclude=group)
    group.external_id = document.get("externalId") or ""
    group.save(update_fields=["name", "external_id"])
    iam.set_group_members(group, _members(scim_group.organization, document))
    scim_group.save(update_fields=["updated_at"])
    _audit(scim_group, "update", before, context)
    return scim_group


@transaction.atomic
def delete_group(scim_group: ScimGroup, *, context: AccessContext) -> None:
    """Delete the group; its members lose the roles it granted."""
    _audit(scim_group, "delete", group_document(scim_group), context)
    iam.delete_group(scim_group.group)


def _group_name(
    organization: Organization, document: dict[str, Any], *, exclude: Group | None
) -> str:
    name = require_string(document, "displayName").strip()
    if len(name) > Group._meta.get_field("name").max_length:
        raise InvalidValueError("displayName is longer than 200 characters.")
    taken = Group.objects.filter(organization=organization, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise UniquenessError(f'displayName "{name}" is already taken.')
    return name


def _members(organization: Organization, document: dict[str, Any]) -> list:
    """Return the Nexus users the document's members name; all must be SCIM users."""
    wanted: set[UUID] = set()
    for member in document.get("members", []):
        value = member.get("value")
        try:
            wanted.add(UUID(str(value)))
        except ValueError:
            raise InvalidValueError(
                f'Member "{value}" is not a user of this organization.'
            ) from None
    rows = ScimUser.objects.filter(organization=organization, scim_id__in=wanted)
    found = {row.scim_id: row.user for row in rows.select_related("user")}
    missing = wanted - found.keys()
    if missing:
        raise InvalidValueError(
            f'Member "{sorted(missing)[0]}" is not a user of this organization.'
        )
    return list(found.values())


def _audit(
    row: ScimUser | ScimGroup,
    verb: str,
    before: dict[str, Any] | None,
    context: AccessContext,
) -> None:
    resource_type = "user" if isinstance(row, ScimUser) else "group"
    after = None
    if verb != "delete":
        after = user_document(row) if isinstance(row, ScimUser) else group_document(row)
    record_change(
        actor=None,
        action=f"scim:{resource_type}.{verb}",
        resource=nrn.build("scim", row.organization.slug, resource_type, row.scim_id),
        organization_id=row.organization_id,
        before=before,
        after=after,
        channel=AdminAuditLog.CHANNEL_SYSTEM,
        context=context,
    )
