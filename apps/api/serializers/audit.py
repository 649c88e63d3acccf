from rest_framework import serializers

from apps.api.serializers.fields import ApiModelSerializer
from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog


class AuditEventSerializer(ApiModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=9, read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "request_id",
            "created_at",
            "organization",
            "project",
            "key",
            "key_prefix",
            "ingress",
            "stream",
            "requested_model",
            "model",
            "upstream_model",
            "provider",
            "provider_type",
            "status_code",
            "error_code",
            "latency_ms",
            "ttfb_ms",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "usage_reported",
            "cost_nano_usd",
            "cost_usd",
            "client_ip",
            "details",
        ]
        read_only_fields = fields


class AdminAuditLogSerializer(ApiModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = AdminAuditLog
        fields = [
            "id",
            "created_at",
            "organization",
            "actor",
            "actor_user",
            "actor_token",
            "channel",
            "action",
            "resource",
            "before",
            "after",
            "request_id",
            "client_ip",
        ]
        read_only_fields = fields
