from rest_framework import serializers

from apps.api.serializers.fields import (
    OrganizationField,
    ScopedSerializer,
    StorableJSONField,
)
from apps.hooks.models import MASKED_HEADER, Hook


class HookSerializer(ScopedSerializer):
    organization = OrganizationField()
    options = StorableJSONField(
        required=False,
        help_text="The hook kind's options as a JSON object. Webhook header values "
        f"are write-only: they are stored encrypted and read back as {MASKED_HEADER}, "
        f"and sending {MASKED_HEADER} for a header keeps its stored value.",
    )
    fixed_fields = ("organization",)

    class Meta:
        model = Hook
        fields = [
            "id",
            "organization",
            "name",
            "description",
            "kind",
            "stage",
            "priority",
            "enabled",
            "timeout_ms",
            "fail_open",
            "options",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def to_representation(self, instance: Hook) -> dict:
        data = super().to_representation(instance)
        options = data.get("options")
        if isinstance(options, dict) and isinstance(options.get("headers"), dict):
            masked = dict.fromkeys(options["headers"], MASKED_HEADER)
            data["options"] = {**options, "headers": masked}
        return data


class PolicyTestRequestSerializer(serializers.Serializer):
    organization = serializers.CharField(
        required=False, help_text="Organization slug or numeric id."
    )
    text = serializers.CharField(help_text="Sample text, tested as one message.")
    stage = serializers.ChoiceField(choices=["request", "response"], default="request")
    region = serializers.CharField(required=False, default="", allow_blank=True)


class HookRecordSerializer(serializers.Serializer):
    hook = serializers.CharField()
    kind = serializers.CharField()
    decision = serializers.CharField()
    outcome = serializers.CharField()
    reason = serializers.CharField()
    rule_ids = serializers.ListField(child=serializers.CharField())
    tags = serializers.ListField(child=serializers.CharField())
    duration_ms = serializers.FloatField()


class PolicyTestSerializer(serializers.Serializer):
    decision = serializers.CharField()
    output = serializers.CharField(help_text="The text after redaction.")
    error = serializers.CharField(help_text="The error a block answers with, if any.")
    tags = serializers.ListField(child=serializers.CharField())
    records = HookRecordSerializer(many=True)
