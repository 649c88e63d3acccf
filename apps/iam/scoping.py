"""Tenant scoping of querysets: which rows an actor may see at all, and may list.

Rows of organizations the actor is not a member of are invisible (404). Inside its
organizations the actor lists the rows its roles, project grants and policies allow.
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from apps.iam.evaluator import Evaluator
from apps.iam.resources import ResourceType, resource_name, scope_name
from apps.iam.selectors import list_member_organizations
from apps.tenancy.models import Organization, Project


def member_organizations(evaluator: Evaluator) -> QuerySet[Organization]:
    """Return the organizations the actor may see: all for superusers."""
    if evaluator.token is not None:
        return Organization.objects.filter(pk=evaluator.token.organization_id)
    if evaluator.user is not None and evaluator.user.is_superuser:
        return Organization.objects.all()
    return list_member_organizations(evaluator.user)


@dataclass(frozen=True)
class Lookups:
    """Queryset lookups from a row to its organization and project."""

    org: str | None
    project: str | None = None

    def org_in(self, ids) -> Q:
        return Q(**{f"{self.org}__in" if self.org else "pk__in": ids})

    def project_in(self, ids) -> Q:
        if self.project is None:
            return Q(pk__in=[])
        return Q(**{f"{self.project}__in" if self.project else "pk__in": ids})


def visible(qs: QuerySet, evaluator: Evaluator, lookups: Lookups) -> QuerySet:
    """Limit qs to rows of the actor's organizations (platform rows stay)."""
    if lookups.org is None:
        return qs
    if evaluator.user is not None and evaluator.user.is_superuser:
        return qs
    return qs.filter(lookups.org_in(member_organizations(evaluator).values("pk")))


def listable(
    qs: QuerySet,
    evaluator: Evaluator,
    spec: ResourceType,
    lookups: Lookups,
    organizations: list[Organization],
    *,
    row_check: bool,
) -> QuerySet | None:
    """Limit qs to the rows the actor may read in organizations; None if it reads none.

    Roles decide per organization and project. When a policy that matches the actor
    and the read permission exists, each row is authorized on its own instead, because
    the policy may name single rows or tags.
    """
    permission = spec.permission("read")
    org_ids: set[int] = set()
    project_ids: set[int] = set()
    checked: list[Organization] = []
    for organization in organizations:
        if row_check and evaluator.policies_for(organization.slug, permission):
            checked.append(organization)
        elif evaluator.authorize(permission, scope_name(spec, organization)):
            org_ids.add(organization.pk)
        elif lookups.project is not None:
            project_ids |= _readable_projects(evaluator, spec, organization)
    allowed = lookups.org_in(org_ids) | lookups.project_in(project_ids)
    if checked:
        allowed |= Q(
            pk__in=_readable_rows(
                qs.filter(lookups.org_in([o.pk for o in checked])),
                evaluator,
                permission,
            )
        )
    if not (org_ids or project_ids or checked):
        return None
    return qs.filter(allowed)


def _readable_projects(
    evaluator: Evaluator, spec: ResourceType, organization: Organization
) -> set[int]:
    readable = set()
    for project_id, slug in evaluator.project_grants(organization.slug).items():
        project = Project(pk=project_id, slug=slug, organization=organization)
        if evaluator.authorize(
            spec.permission("read"), scope_name(spec, organization, project)
        ):
            readable.add(project_id)
    return readable


def _readable_rows(qs: QuerySet, evaluator: Evaluator, permission: str) -> list[int]:
    # NOTE: this loads every candidate row of the organizations concerned. It runs only
    # where a policy matches the actor and permission, and never for the audit tables.
    return [row.pk for row in qs if evaluator.authorize(permission, resource_name(row))]
