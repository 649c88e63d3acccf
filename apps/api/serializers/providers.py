from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.api.serializers.fields import (
    ApiModelSerializer,
    OrganizationField,
    ScopedSerializer,
)
from apps.providers.models import Model, ProviderConnection


def run_model_clean(instance) -> None:
    """Run the model's own clean() and turn its errors into API field errors."""
    try:
        instance.clean()
    except DjangoValidationError as exc:
        raise serializers.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        ) from None


class ProviderConnectionSerializer(ScopedSerializer):
    organization = OrganizationField(
        allow_null=True,
        help_text="Owning organization, slug or numeric id; responses show the slug. "
        "Empty or null makes a shared platform connection, which only superusers "
        "may create. Fixed after create.",
    )
    credential = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="API key or credential JSON. Write-only; an empty string removes it.",
    )
    has_credential = serializers.SerializerMethodField()

    class Meta:
        model = ProviderConnection
        fields = [
            "id",
            "uid",
            "organization",
            "name",
            "provider_type",
            "base_url",
            "region",
            "options",
            "enabled",
            "has_credential",
            "credential",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["uid", "created_at", "updated_at"]

    def get_has_credential(self, obj: ProviderConnection) -> bool:
        return bool(obj.credential_ciphertext)

    def validate(self, attrs):
        fields = {name: value for name, value in attrs.items() if name != "credential"}
        fields.pop("organization", None)
        candidate = ProviderConnection(**{**self._current(), **fields})
        run_model_clean(candidate)
        return super().validate(attrs)

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {
            name: getattr(self.instance, name)
            for name in ("name", "provider_type", "options")
        }


class ModelSerializer(ApiModelSerializer):
    organization = serializers.SlugRelatedField(
        source="connection.organization",
        slug_field="slug",
        read_only=True,
        allow_null=True,
        help_text="The organization that owns the model's connection; null when the "
        "connection is shared.",
    )

    class Meta:
        model = Model
        fields = [
            "id",
            "organization",
            "name",
            "aliases",
            "kind",
            "connection",
            "upstream_model",
            "input_price",
            "output_price",
            "cached_input_price",
            "cache_write_price",
            "enabled",
        ]

    def validate(self, attrs):
        candidate = Model(pk=self.instance.pk if self.instance else None)
        if self.instance is not None:
            candidate.name = self.instance.name
            candidate.aliases = self.instance.aliases
        for name in ("name", "aliases"):
            if name in attrs:
                setattr(candidate, name, attrs[name])
        run_model_clean(candidate)
        return attrs
