"""The escalation check: nobody grants a permission they do not hold themselves."""

from collections.abc import Iterable

from apps.iam import nrn
from apps.iam.context import AccessContext
from apps.iam.errors import EscalationError
from apps.iam.evaluator import Actor, Evaluator
from apps.iam.permissions import split
from apps.tenancy.models import Organization, Project


def scope_resource(
    permission: str, organization: Organization, project: Project | None = None
) -> nrn.Nrn:
    """Return the wildcard resource name that stands for a permission's whole scope."""
    service, resource_type, _ = split(permission)
    return nrn.build(
        service, organization.slug, resource_type, "*", project.slug if project else ""
    )


def missing_permissions(
    actor: Actor,
    organization: Organization,
    permissions: Iterable[str],
    *,
    project: Project | None = None,
    context: AccessContext | None = None,
) -> list[str]:
    """Return the permissions the actor does not hold over the organization or project."""
    evaluator = Evaluator(actor, context)
    return sorted(
        permission
        for permission in set(permissions)
        if not evaluator.authorize(
            permission, scope_resource(permission, organization, project)
        )
    )


def ensure_can_grant(
    actor: Actor | None,
    organization: Organization,
    permissions: Iterable[str],
    *,
    project: Project | None = None,
    context: AccessContext | None = None,
) -> None:
    """Raise EscalationError unless the actor holds every permission it is granting.

    A None actor is the system itself (OIDC login, SCIM provisioning) and is trusted.
    """
    if actor is None:
        return
    missing = missing_permissions(
        actor, organization, permissions, project=project, context=context
    )
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise EscalationError(
            f"Cannot grant permissions you do not hold yourself: {shown}.",
            param="permissions",
        )
