"""Query filters of the list endpoints (django-filter)."""

from datetime import UTC

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Q
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.rest_framework import FilterSet as RestFrameworkFilterSet

from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog, Group, Membership, Policy, ServiceToken
from apps.keys.models import VirtualKey
from apps.providers.models import Model, ProviderConnection
from apps.tenancy.models import Project


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


class ApiFilterSet(RestFrameworkFilterSet):
    """Base of the filter sets that django-filter builds from `filterset_fields`."""

    FILTER_DEFAULTS = {
        **RestFrameworkFilterSet.FILTER_DEFAULTS,
        models.DateTimeField: {"filter_class": UtcIsoDateTimeFilter},
    }


class ApiFilterBackend(DjangoFilterBackend):
    """django-filter's backend, whose generated date-time filters convert to UTC."""

    filterset_base = ApiFilterSet


class OrganizationFilter(django_filters.FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")


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
