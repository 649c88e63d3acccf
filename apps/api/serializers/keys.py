from rest_framework import serializers

from apps.api.serializers.fields import (
    OrganizationField,
    ProjectField,
    ScopedSerializer,
)
from apps.keys.models import VirtualKey


class VirtualKeySerializer(ScopedSerializer):
    organization = OrganizationField()
    project = ProjectField()
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = VirtualKey
        fields = [
            "id",
            "organization",
            "project",
            "owner",
            "name",
            "prefix",
            "allowed_models",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
            "is_active",
        ]
        read_only_fields = ["prefix", "revoked_at", "last_used_at", "created_at"]

    def validate_allowed_models(self, value):
        if not isinstance(value, list) or not all(
            isinstance(name, str) and name for name in value
        ):
            raise serializers.ValidationError("Send a list of model names.")
        return value


class IssuedKeySerializer(VirtualKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="The plaintext key, shown only in this response."
    )

    class Meta(VirtualKeySerializer.Meta):
        fields = [*VirtualKeySerializer.Meta.fields, "key"]
