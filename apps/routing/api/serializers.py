from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.api.serializers.fields import (
    ApiModelSerializer,
    OrganizationIdField,
    StorableJSONField,
)
from apps.routing.models import Route

FIELDS = [
    "name",
    "description",
    "model",
    "organization",
    "project",
    "key",
    "match_headers",
    "match_metadata",
    "priority",
    "config",
    "retries",
    "backoff_seconds",
    "max_backoff_seconds",
    "timeout_seconds",
    "failover_statuses",
    "enabled",
]


class RouteSerializer(ApiModelSerializer):
    organization = OrganizationIdField(
        required=False,
        allow_null=True,
        help_text=(
            "Match only this organization's requests; a slug or a numeric id, shown "
            "as the id. Empty matches every one."
        ),
    )
    config = StorableJSONField(
        help_text="The strategy tree: a model name or a strategy object (see docs/routing.md)."
    )

    class Meta:
        model = Route
        fields = ["id", *FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        """Run the route's own checks on the merged result of the instance and attrs."""
        candidate = Route(pk=self.instance.pk if self.instance else None)
        for name in FIELDS:
            if name in attrs:
                value = attrs[name]
            elif self.instance is not None:
                value = getattr(self.instance, name)
            else:
                value = Route._meta.get_field(name).get_default()
            setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        if "match_headers" in attrs:
            attrs["match_headers"] = candidate.match_headers
        return attrs


class TargetHealthSerializer(serializers.Serializer):
    model = serializers.CharField()
    provider = serializers.CharField()
    target_id = serializers.CharField()
    state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    requests = serializers.IntegerField(help_text="Attempts in the rolling window.")
    failures = serializers.IntegerField(help_text="Failed attempts in the window.")
    error_rate = serializers.FloatField()
    consecutive_failures = serializers.IntegerField()
    latency_ms = serializers.FloatField(
        allow_null=True, help_text="Moving average of time to answer headers."
    )
    headroom = serializers.FloatField(
        allow_null=True,
        help_text="Smallest remaining share of the provider's rate limits, 0 to 1.",
    )
    open_until = serializers.FloatField(
        help_text="Unix time when an open circuit turns half-open; 0 otherwise."
    )


class RouteHealthSerializer(serializers.Serializer):
    route = serializers.CharField()
    strategy = serializers.CharField()
    targets = TargetHealthSerializer(many=True)
    missing = serializers.ListField(
        child=serializers.CharField(), help_text="Model names that no longer exist."
    )
