from rest_framework import serializers

from apps.api.serializers.fields import (
    ApiModelSerializer,
    OrganizationField,
    ProjectField,
    ScopedSerializer,
)
from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup


class QuotaSerializer(ScopedSerializer):
    organization = OrganizationField()
    project = ProjectField()
    fixed_fields = ("organization",)

    class Meta:
        model = Quota
        fields = [
            "id",
            "uid",
            "organization",
            "name",
            "axis",
            "unit",
            "window",
            "window_size",
            "timezone",
            "soft_limit",
            "hard_limit",
            "project",
            "key",
            "provider",
            "model",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["uid", "created_at", "updated_at"]


class CounterUsageSerializer(serializers.Serializer):
    dimensions = serializers.DictField(
        child=serializers.CharField(),
        help_text="Axis values of the counter, e.g. {'key': '12'}; empty for one shared counter.",
    )
    used = serializers.CharField(help_text="Usage in the current window, in the unit.")
    remaining = serializers.CharField(
        allow_null=True,
        help_text="Hard limit minus usage, in the unit; null without one.",
    )


class QuotaUsageSerializer(serializers.Serializer):
    quota = serializers.UUIDField()
    unit = serializers.CharField()
    window = serializers.CharField()
    soft_limit = serializers.CharField(allow_null=True)
    hard_limit = serializers.CharField(allow_null=True)
    counters = CounterUsageSerializer(many=True)


class QuotaSettingsSerializer(ScopedSerializer):
    organization = OrganizationField()
    fixed_fields = ("organization",)

    class Meta:
        model = QuotaSettings
        fields = [
            "id",
            "organization",
            "fail_mode",
            "default_output_tokens",
            "alert_webhook_url",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]


class QuotaAlertSerializer(ApiModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    quota = serializers.SlugRelatedField(slug_field="uid", read_only=True)

    class Meta:
        model = QuotaAlert
        fields = [
            "id",
            "organization",
            "quota",
            "quota_name",
            "dimensions",
            "unit",
            "window_start",
            "used",
            "soft_limit",
            "hard_limit",
            "request_id",
            "created_at",
            "status",
            "attempts",
            "delivered_at",
            "last_error",
        ]
        read_only_fields = fields


class UsageRollupSerializer(ApiModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = UsageRollup
        fields = [
            "hour",
            "organization",
            "project_id",
            "key_id",
            "provider",
            "model",
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cost_nano_usd",
        ]
        read_only_fields = fields
