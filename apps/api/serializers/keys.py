from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.api.serializers.fields import (
    OrganizationField,
    ProjectField,
    ScopedSerializer,
)
from apps.keys.models import VirtualKey
from apps.keys.services import check_allowed_models, check_expires_at


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
        stored = self.instance.allowed_models if self.instance is not None else ()
        try:
            return check_allowed_models(value, stored=stored or ())
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate_expires_at(self, value):
        stored = self.instance.expires_at if self.instance is not None else None
        try:
            check_expires_at(value, stored=stored)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value


class IssuedKeySerializer(VirtualKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="The plaintext key, shown only in this response."
    )

    class Meta(VirtualKeySerializer.Meta):
        fields = [*VirtualKeySerializer.Meta.fields, "key"]
