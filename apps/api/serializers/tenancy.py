from django.contrib.auth import get_user_model
from django.utils.text import slugify
from rest_framework import serializers

from apps.api.serializers.fields import OrganizationField, ScopedSerializer
from apps.tenancy.models import Organization, Project

SLUG_HELP = (
    "Defaults to the name, slugified. Fixed after create, because resource names, "
    "policies and tags contain it."
)


class SlugDefaultMixin:
    """Reject a create whose slug, sent or derived from the name, would be empty."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None and not attrs.get("slug"):
            if not slugify(attrs.get("name", "")):
                raise serializers.ValidationError(
                    {
                        "slug": [
                            "The name contains no letter or digit to make a slug "
                            "from; send a slug."
                        ]
                    }
                )
        return attrs


class OrganizationSerializer(SlugDefaultMixin, ScopedSerializer):
    fixed_fields = ("slug",)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(),
        write_only=True,
        required=False,
        help_text="A user id to make the first owner (create only).",
    )

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "owner"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"slug": {"required": False, "help_text": SLUG_HELP}}


class ProjectSerializer(SlugDefaultMixin, ScopedSerializer):
    organization = OrganizationField()
    fixed_fields = ("organization", "slug")

    class Meta:
        model = Project
        fields = ["id", "organization", "name", "slug", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"slug": {"required": False, "help_text": SLUG_HELP}}
        # The per-org slug constraint is checked by the database (409 on a clash).
        validators = []
