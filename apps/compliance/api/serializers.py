from rest_framework import serializers

from apps.api.serializers.fields import OrganizationField, ScopedSerializer
from apps.compliance.models import KillSwitch, PassthroughFlag


class KillSwitchSerializer(ScopedSerializer):
    organization = OrganizationField()
    scope = serializers.ChoiceField(choices=["org", "key"])
    fixed_fields = ("organization", "scope", "key")

    class Meta:
        model = KillSwitch
        fields = [
            "id",
            "organization",
            "scope",
            "key",
            "reason",
            "active",
            "created_at",
        ]
        read_only_fields = ["active", "created_at"]


class PassthroughFlagSerializer(ScopedSerializer):
    organization = OrganizationField()
    fixed_fields = ("organization",)

    class Meta:
        model = PassthroughFlag
        fields = [
            "id",
            "organization",
            "bypass_hooks",
            "bypass_cache",
            "bypass_normalize",
            "reason",
            "starts_at",
            "expires_at",
            "ended_at",
            "created_at",
        ]
        read_only_fields = ["ended_at", "created_at"]


class SwitchOffSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=500,
        help_text="Why traffic may flow again; written to the control log.",
    )
