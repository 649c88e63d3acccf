from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.api.serializers.fields import (
    ApiModelSerializer,
    OrganizationField,
    ProjectField,
    ScopedSerializer,
    reject_nul_characters,
)
from apps.iam.models import (
    Group,
    Membership,
    Policy,
    ResourceTags,
    ServiceToken,
    UserTags,
)
from apps.iam.roles import ROLE_CHOICES


class UserSerializer(ApiModelSerializer):
    # Django's user model stores "" for a user without an address.
    email = serializers.EmailField(
        read_only=True, allow_blank=True, label="Email address"
    )

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "is_active"]
        read_only_fields = fields


class MembershipSerializer(ScopedSerializer):
    organization = OrganizationField()
    project = ProjectField()
    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all())

    class Meta:
        model = Membership
        fields = [
            "id",
            "organization",
            "user",
            "role",
            "project",
            "source",
            "created_at",
        ]
        read_only_fields = ["source", "created_at"]
        validators = []


class GroupRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLE_CHOICES)
    project = ProjectField()


class GroupSerializer(ScopedSerializer):
    organization = OrganizationField()
    members = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), many=True, required=False
    )
    roles = GroupRoleSerializer(many=True, required=False)
    fixed_fields = ("organization",)

    class Meta:
        model = Group
        fields = [
            "id",
            "organization",
            "name",
            "source",
            "external_id",
            "members",
            "roles",
            "created_at",
        ]
        read_only_fields = ["source", "created_at"]
        validators = []

    def to_representation(self, instance: Group) -> dict:
        data = super().to_representation(instance)
        data["roles"] = [
            {"role": row.role, "project": row.project_id}
            for row in instance.roles.all()
        ]
        return data


class PolicySerializer(ScopedSerializer):
    organization = OrganizationField()
    principals = serializers.ListField(child=serializers.CharField())
    actions = serializers.ListField(child=serializers.CharField())
    resources = serializers.ListField(child=serializers.CharField())
    conditions = serializers.DictField(
        required=False, validators=[reject_nul_characters]
    )
    fixed_fields = ("organization",)

    class Meta:
        model = Policy
        fields = [
            "id",
            "organization",
            "name",
            "description",
            "effect",
            "principals",
            "actions",
            "resources",
            "conditions",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        validators = []


class ServiceTokenSerializer(ScopedSerializer):
    organization = OrganizationField()
    scopes = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ServiceToken
        fields = [
            "id",
            "organization",
            "name",
            "scopes",
            "prefix",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
            "is_active",
        ]
        read_only_fields = ["prefix", "revoked_at", "last_used_at", "created_at"]


class IssuedTokenSerializer(ServiceTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The plaintext token, shown only in this response."
    )

    class Meta(ServiceTokenSerializer.Meta):
        fields = [*ServiceTokenSerializer.Meta.fields, "token"]


class UserTagsSerializer(ScopedSerializer):
    organization = OrganizationField()
    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all())
    tags = serializers.DictField(validators=[reject_nul_characters])
    fixed_fields = ("organization", "user")

    class Meta:
        model = UserTags
        fields = ["id", "organization", "user", "tags"]
        validators = []


class ResourceTagsSerializer(ScopedSerializer):
    organization = OrganizationField()
    tags = serializers.DictField(validators=[reject_nul_characters])
    fixed_fields = ("organization", "resource")

    class Meta:
        model = ResourceTags
        fields = ["id", "organization", "resource", "tags"]
        validators = []


class RoleSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    project_scoped = serializers.BooleanField()
    permissions = serializers.ListField(child=serializers.CharField())


class PermissionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
