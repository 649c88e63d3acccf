from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam.scoping import Lookups
from apps.quotas.api.serializers import (
    QuotaAlertSerializer,
    QuotaSerializer,
    QuotaSettingsSerializer,
    QuotaUsageSerializer,
    UsageRollupSerializer,
)
from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup
from apps.quotas.selectors import list_quota_usage
from apps.quotas.services import delete_quota, save_quota, update_quota_settings
from nexus.engine.quotas.messages import format_amount
from nexus.engine.quotas.rules import Unit


@contextmanager
def field_errors():
    """Turn a model's validation errors into a 400 with field errors."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


class QuotaViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    """Quotas of an organization, and the current usage of each one's counters."""

    queryset = Quota.objects.select_related(
        "organization", "project", "key", "provider"
    )
    serializer_class = QuotaSerializer
    lookups = Lookups(org="organization", project="project")
    filterset_fields = ["enabled", "unit", "window", "axis", "project", "key"]
    verbs = {"usage": "read"}

    def perform_create_in(self, serializer, organization, project) -> Quota:
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        data["project"] = project
        with field_errors():
            return save_quota(Quota(organization=organization, **data))

    def perform_update_in(self, serializer) -> Quota:
        quota = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(quota, name, value)
        with field_errors():
            return save_quota(quota)

    def perform_destroy_in(self, instance: Quota) -> None:
        delete_quota(instance)

    @extend_schema(responses=QuotaUsageSerializer)
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, pk: str | None = None) -> Response:
        """Return each counter's usage and remaining budget in the current window."""
        quota = self.get_object()
        unit = Unit(quota.unit)
        rule = quota.to_rule()

        def amount(value: int | None) -> str | None:
            return None if value is None else format_amount(unit, value)

        body = {
            "quota": quota.uid,
            "unit": quota.unit,
            "window": rule.window.label(),
            "soft_limit": amount(rule.soft_limit),
            "hard_limit": amount(rule.hard_limit),
            "counters": [
                {
                    "dimensions": usage.dimensions,
                    "used": amount(usage.used),
                    "remaining": amount(usage.remaining),
                }
                for usage in list_quota_usage(quota)
            ],
        }
        return Response(QuotaUsageSerializer(body).data)


class QuotaSettingsViewSet(CreateMixin, ListRetrieveMixin, UpdateMixin, ScopedViewSet):
    """Quota settings of an organization: outage behaviour, estimates, alert webhook."""

    queryset = QuotaSettings.objects.select_related("organization")
    serializer_class = QuotaSettingsSerializer
    lookups = Lookups(org="organization")
    # An organization has one settings row; creating it changes its settings.
    verbs = {"create": "update"}

    def perform_create_in(self, serializer, organization, project) -> QuotaSettings:
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        with field_errors():
            return update_quota_settings(organization, **data)

    def perform_update_in(self, serializer) -> QuotaSettings:
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        with field_errors():
            return update_quota_settings(serializer.instance.organization, **data)


class QuotaAlertViewSet(ListRetrieveMixin, ScopedViewSet):
    """Soft-limit crossings and the delivery of their webhook alerts."""

    queryset = QuotaAlert.objects.select_related("organization", "quota")
    serializer_class = QuotaAlertSerializer
    lookups = Lookups(org="organization")
    filterset_fields = ["status", "unit"]


class UsageRollupViewSet(ListRetrieveMixin, ScopedViewSet):
    """Hourly usage per organization, project, key, provider and model."""

    queryset = UsageRollup.objects.select_related("organization")
    serializer_class = UsageRollupSerializer
    lookups = Lookups(org="organization")
    row_check = False
    filterset_fields = {
        "hour": ["gte", "lt"],
        "project_id": ["exact"],
        "key_id": ["exact"],
        "provider": ["exact"],
        "model": ["exact"],
    }
