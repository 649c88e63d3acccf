"""Query filters of the list endpoints (django-filter).

Wherever a request names an organization, in a body or a query parameter, the value
is the organization's slug or its numeric id (see find_organization).
"""

import re
from datetime import UTC
from functools import cache
from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import slug_re
from django.db import models
from django.db.models import Q, QuerySet
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.rest_framework import FilterSet as RestFrameworkFilterSet
from rest_framework.exceptions import NotFound

from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog, Group, Membership, Policy, ServiceToken
from apps.keys.models import VirtualKey
from apps.providers.models import Model, ProviderConnection
from apps.tenancy.models import Organization, Project

ORGANIZATION_HELP = "Organization slug or numeric id."
# The largest value of a bigint primary key, so a larger id names no row.
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts characters such as "²".
ASCII_DIGITS = re.compile(r"[0-9]+")


def find_organization(
    organizations: QuerySet[Organization], value: Any
) -> Organization | None:
    """Return the organization in organizations that value names, or None.

    A value names the organization with that slug. A value of ASCII digits that is
    no organization's slug names the organization with that id, so an organization
    whose slug is all digits keeps being found by its slug.
    """
    text = str(value)
    # A value that is no slug matches no row, and PostgreSQL would reject one with
    # a NUL character instead of finding nothing.
    if not slug_re.fullmatch(text):
        return None
    organization = organizations.filter(slug=text).first()
    if organization is not None or not ASCII_DIGITS.fullmatch(text):
        return organization
    if int(text) > MAX_ID:
        return None
    return organizations.filter(pk=int(text)).first()


def get_organization(organizations: QuerySet[Organization], value: Any) -> Organization:
    """Return the organization in organizations that value names; raise NotFound."""
    organization = find_organization(organizations, value)
    if organization is None:
        raise NotFound(f'No organization with slug or id "{value}".')
    return organization


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC.

    Python accepts UTC offsets up to 23:59 and PostgreSQL only up to 15:59, so a
    value is converted before it reaches a query.
    """

    def to_python(self, value):
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                "Date-time value out of range.", code="overflow"
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class OrganizationFormField(forms.CharField):
    """An organization by slug or numeric id, among all organizations."""

    def clean(self, value: Any) -> Organization | None:
        value = super().clean(value)
        if value in EMPTY_VALUES:
            return None
        organization = find_organization(Organization.objects.all(), value)
        if organization is None:
            raise forms.ValidationError(
                'No organization with slug or id "%(value)s".',
                code="invalid_choice",
                params={"value": value},
            )
        return organization


class OrganizationRowFilter(django_filters.CharFilter):
    """Rows of the organization named by slug or numeric id; 400 for an unknown one.

    For platform tables such as routes, whose rows are visible to every reader, so
    any organization may be named.
    """

    field_class = OrganizationFormField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", ORGANIZATION_HELP)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: Organization | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(**{self.field_name: value})


class ScopedOrganizationFilter(django_filters.CharFilter):
    """The `organization` parameter of a tenant-scoped list, as the schema shows it.

    ScopedViewSet.list_queryset resolves the value among the actor's organizations
    (404 for any other) and limits the rows to it before filter sets run, so this
    filter leaves the queryset as it is.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", ORGANIZATION_HELP)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs


class ApiFilterSet(RestFrameworkFilterSet):
    """Base of the filter sets that django-filter builds from `filterset_fields`."""

    FILTER_DEFAULTS = {
        **RestFrameworkFilterSet.FILTER_DEFAULTS,
        models.DateTimeField: {"filter_class": UtcIsoDateTimeFilter},
    }

    @classmethod
    def filter_for_field(cls, field, field_name, lookup_expr=None):
        related = getattr(field, "related_model", None)
        if related is Organization and lookup_expr in (None, "exact"):
            return OrganizationRowFilter(field_name=field_name)
        return super().filter_for_field(field, field_name, lookup_expr)


class ApiFilterBackend(DjangoFilterBackend):
    """django-filter's backend for the API's list endpoints.

    Generated date-time filters convert to UTC, and generated filters on an
    organization foreign key take a slug or an id. Every tenant-scoped list gets an
    `organization` filter, which ScopedViewSet applies.
    """

    filterset_base = ApiFilterSet

    def get_filterset_class(self, view, queryset=None):
        filterset_class = super().get_filterset_class(view, queryset)
        lookups = getattr(view, "lookups", None)
        if lookups is None or lookups.org is None:
            return filterset_class
        if filterset_class is None:
            if queryset is None:
                return None
            return _organization_only(queryset.model)
        if "organization" in filterset_class.base_filters:
            return filterset_class
        return _with_organization(filterset_class)

    def query_parameters(self, view) -> set[str]:
        """Return the names of the query parameters the view's filter set reads."""
        queryset = getattr(view, "queryset", None)
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return set()
        return set(filterset_class.base_filters)


def _with_organization(
    filterset_class: type[django_filters.FilterSet],
) -> type[django_filters.FilterSet]:
    # Not cached: filter sets built from `filterset_fields` are new classes on each
    # call, as django-filter makes them.
    return type(
        filterset_class.__name__,
        (filterset_class,),
        {"organization": ScopedOrganizationFilter()},
    )


@cache
def _organization_only(model: type[models.Model]) -> type[django_filters.FilterSet]:
    meta = type("Meta", (), {"model": model, "fields": []})
    return type(
        f"{model.__name__}Filter",
        (ApiFilterSet,),
        {"Meta": meta, "organization": ScopedOrganizationFilter()},
    )


class OrganizationFilter(django_filters.FilterSet):
    organization = ScopedOrganizationFilter()


class ProjectFilter(OrganizationFilter):
    class Meta:
        model = Project
        fields = ["organization", "slug"]


class VirtualKeyFilter(OrganizationFilter):
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = VirtualKey
        fields = ["organization", "project", "owner", "prefix", "revoked"]


class ProviderConnectionFilter(django_filters.FilterSet):
    class Meta:
        model = ProviderConnection
        fields = ["provider_type", "enabled"]


class ModelFilter(django_filters.FilterSet):
    class Meta:
        model = Model
        fields = ["kind", "connection", "enabled"]


class AuditEventFilter(OrganizationFilter):
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    status = django_filters.NumberFilter(field_name="status_code")
    key = django_filters.NumberFilter(field_name="key_id")
    model = django_filters.CharFilter(
        method="filter_model", help_text="Served or requested model name."
    )

    class Meta:
        model = AuditEvent
        fields = [
            "organization",
            "project",
            "key",
            "key_prefix",
            "request_id",
            "status",
            "provider",
            "ingress",
        ]

    def filter_model(self, queryset, name, value):
        return queryset.filter(Q(model=value) | Q(requested_model=value))


class AdminAuditLogFilter(OrganizationFilter):
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    resource = django_filters.CharFilter(
        field_name="resource", lookup_expr="startswith"
    )

    class Meta:
        model = AdminAuditLog
        fields = [
            "organization",
            "action",
            "channel",
            "actor_user",
            "actor_token",
            "resource",
        ]


class MembershipFilter(OrganizationFilter):
    class Meta:
        model = Membership
        fields = ["organization", "user", "role", "project", "source"]


class GroupFilter(OrganizationFilter):
    class Meta:
        model = Group
        fields = ["organization", "name", "source", "external_id"]


class PolicyFilter(OrganizationFilter):
    class Meta:
        model = Policy
        fields = ["organization", "effect", "enabled"]


class ServiceTokenFilter(OrganizationFilter):
    class Meta:
        model = ServiceToken
        fields = ["organization", "prefix"]


class UserFilter(django_filters.FilterSet):
    class Meta:
        model = get_user_model()
        fields = ["username", "email", "is_active"]
