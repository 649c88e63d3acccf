"""Organization scoping, authorization and audit logging for Django admin pages.

OrgScopedAdminMixin goes first in a ModelAdmin's bases. Superusers see everything.
Other staff see the rows of their organizations, and the IAM evaluator decides every
view, add, change and delete instead of Django's model permissions. Every
saved or deleted row is written to the admin audit log with secrets masked.
"""

from contextlib import contextmanager
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpRequest

from apps.iam import nrn
from apps.iam.changelog import record_change, snapshot
from apps.iam.context import context_from_request
from apps.iam.evaluator import Evaluator
from apps.iam.models import AdminAuditLog
from apps.iam.resources import (
    REGISTRY,
    ResourceType,
    organization_of,
    resource_name,
    resource_type_of,
    scope_name,
)
from apps.iam.scoping import Lookups, listable, member_organizations, visible
from apps.tenancy.models import Organization, Project


def evaluator_for(request: HttpRequest) -> Evaluator:
    """Return the request's evaluator, created once per request."""
    evaluator = getattr(request, "_nexus_evaluator", None)
    if evaluator is None:
        evaluator = Evaluator(request.user, context_from_request(request))
        request._nexus_evaluator = evaluator
    return evaluator


def _is_superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


class OrgScopedAdminMixin:
    """Scope, authorize and audit a ModelAdmin through the IAM evaluator."""

    # Lookup from a row to its organization: "" for Organization, None for platform rows.
    org_lookup: str | None = "organization"
    project_lookup: str | None = None
    # User choices list only members of the actor's organizations unless False.
    scoped_user_choices = True
    # Per-row authorization of lists when a policy matches; off for huge tables.
    row_check = True

    @property
    def resource(self) -> ResourceType:
        return resource_type_of(self.model)

    @property
    def lookups(self) -> Lookups:
        return Lookups(org=self.org_lookup, project=self.project_lookup)

    def allows(
        self, request: HttpRequest, verb: str, obj: models.Model | None = None
    ) -> bool:
        """Return whether the evaluator allows verb on obj, or on any row when obj is None."""
        if _is_superuser(request):
            return True
        evaluator = evaluator_for(request)
        permission = self.resource.permission(verb)
        if obj is not None:
            return evaluator.authorize(permission, self.resource_name_of(obj)).allowed
        if self.org_lookup is None:
            return evaluator.authorize(
                permission, scope_name(self.resource, None)
            ).allowed
        return any(
            evaluator.authorize(
                permission, scope_name(self.resource, organization)
            ).allowed
            or any(
                evaluator.authorize(
                    permission, scope_name(self.resource, organization, project)
                ).allowed
                for project in self._granted_projects(evaluator, organization)
            )
            for organization in member_organizations(evaluator)
        )

    def resource_name_of(self, obj: models.Model) -> nrn.Nrn:
        """Return the resource name that permission checks on obj use.

        Admins of rows that resource_name() cannot follow to their organization
        override this, and turn off row_check, which calls resource_name() per row.
        """
        return resource_name(obj)

    def _granted_projects(
        self, evaluator: Evaluator, organization: Organization
    ) -> list[Project]:
        if self.project_lookup is None:
            return []
        return [
            Project(pk=pk, slug=slug, organization=organization)
            for pk, slug in evaluator.project_grants(organization.slug).items()
        ]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = super().get_queryset(request)
        if _is_superuser(request):
            return qs
        evaluator = evaluator_for(request)
        qs = visible(qs, evaluator, self.lookups)
        if self.org_lookup is None:
            return qs if self.allows(request, "read") else qs.none()
        organizations = list(member_organizations(evaluator))
        readable = listable(
            qs,
            evaluator,
            self.resource,
            self.lookups,
            organizations,
            row_check=self.row_check,
        )
        return readable if readable is not None else qs.none()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return (
            request.user.is_active
            and request.user.is_staff
            and self.allows(request, "read")
        )

    def has_view_permission(
        self, request: HttpRequest, obj: models.Model | None = None
    ) -> bool:
        return self.allows(request, "read", obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.allows(request, "create")

    def has_change_permission(
        self, request: HttpRequest, obj: models.Model | None = None
    ) -> bool:
        return self.allows(request, "update", obj)

    def has_delete_permission(
        self, request: HttpRequest, obj: models.Model | None = None
    ) -> bool:
        return self.allows(request, "delete", obj)

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        # An empty organization makes a row for every organization, a platform row
        # that only superusers may write. save_model() denies it as well.
        field = form.base_fields.get(self.org_lookup or "")
        if field is not None and not _is_superuser(request):
            field.required = True
        return form

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if not _is_superuser(request):
            limited = self._limit_choices(db_field.related_model, request)
            if limited is not None:
                kwargs["queryset"] = limited
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _limit_choices(
        self, related: type[models.Model], request: HttpRequest
    ) -> models.QuerySet | None:
        organizations = member_organizations(evaluator_for(request))
        if related is Organization:
            return organizations
        if related is Project:
            return Project.objects.filter(organization__in=organizations)
        if related is get_user_model() and self.scoped_user_choices:
            return (
                get_user_model()
                .objects.filter(memberships__organization__in=organizations)
                .distinct()
            )
        spec = REGISTRY.get(related)
        if spec is not None and spec.org_path:
            # Rows of other organizations, such as their virtual keys, are not offered.
            return related._default_manager.filter(
                **{f"{spec.org_path}__in": organizations}
            )
        return None

    def get_list_filter(self, request: HttpRequest):
        # A plain related filter lists every organization; list only those shown.
        filters = super().get_list_filter(request)
        if _is_superuser(request):
            return filters
        return [
            (name, admin.RelatedOnlyFieldListFilter)
            if isinstance(name, str) and name in ("organization", "project", "owner")
            else name
            for name in filters
        ]

    def save_model(
        self, request: HttpRequest, obj: models.Model, form, change: bool
    ) -> None:
        verb = "update" if change else "create"
        with self.audited(request, obj, verb):
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        with self.audited(request, obj, "delete"):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            with self.audited(request, obj, "delete"):
                obj.delete()
        for obj in instances:
            with self.audited(request, obj, "update" if obj.pk else "create"):
                obj.save()
        formset.save_m2m()

    @contextmanager
    def audited(self, request: HttpRequest, obj: models.Model, verb: str):
        """Authorize verb on obj, run the change, and log it with before and after."""
        spec = resource_type_of(type(obj))
        permission = spec.permission(verb)
        name = resource_name(obj)
        stored = (
            type(obj)._default_manager.filter(pk=obj.pk).first() if obj.pk else None
        )
        # A change that moves a row to another organization needs the permission on
        # both sides.
        targets = {str(name), str(resource_name(stored)) if stored else str(name)}
        for target in sorted(targets):
            decision = evaluator_for(request).authorize(permission, target)
            if not decision.allowed:
                raise PermissionDenied(
                    f"Permission {permission} is denied on {target}: {decision.reason}."
                )
        before = snapshot(stored) if stored is not None else None
        organization = organization_of(obj)
        organization_id = organization.pk if organization else None

        with transaction.atomic():
            yield
            after = snapshot(obj) if verb != "delete" else None
            record_change(
                actor=request.user,
                action=permission,
                resource=resource_name(obj) if verb != "delete" else name,
                organization_id=organization_id,
                before=before,
                after=after,
                channel=AdminAuditLog.CHANNEL_ADMIN,
                context=evaluator_for(request).context,
            )


class OrgScopedInlineMixin:
    """Authorize an inline's rows through the evaluator, like OrgScopedAdminMixin."""

    def _allows(
        self, request: HttpRequest, verb: str, parent: models.Model | None
    ) -> bool:
        if _is_superuser(request):
            return True
        if parent is None or parent.pk is None:
            return False
        organization = (
            parent if isinstance(parent, Organization) else organization_of(parent)
        )
        spec = resource_type_of(self.model)
        name = scope_name(spec, organization)
        return evaluator_for(request).authorize(spec.permission(verb), name).allowed

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allows(request, "read", obj)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allows(request, "create", obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allows(request, "update", obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allows(request, "delete", obj)
