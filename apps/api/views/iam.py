from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.api.filters import (
    GroupFilter,
    MembershipFilter,
    PolicyFilter,
    ServiceTokenFilter,
)
from apps.api.serializers.iam import (
    GroupSerializer,
    IssuedTokenSerializer,
    MembershipSerializer,
    PolicySerializer,
    ResourceTagsSerializer,
    ServiceTokenSerializer,
    UserTagsSerializer,
)
from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam.changelog import snapshot
from apps.iam.models import (
    Group,
    Membership,
    Policy,
    ResourceTags,
    ServiceToken,
    UserTags,
)
from apps.iam.policies import (
    create_policy,
    delete_policy,
    set_resource_tags,
    set_user_tags,
    update_policy,
)
from apps.iam.scoping import Lookups
from apps.iam.selectors import roles_for
from apps.iam.services import (
    create_group,
    delete_group,
    grant_role,
    revoke_role,
    set_group_members,
    set_group_roles,
)
from apps.iam.tokens import issue_service_token, revoke_service_token


class IamViewSet(ScopedViewSet):
    """Passes the acting principal and request context to the IAM services."""

    @property
    def acting(self) -> dict:
        return {"actor": self.evaluator.actor, "context": self.evaluator.context}


class MembershipViewSet(CreateMixin, ListRetrieveMixin, DestroyMixin, IamViewSet):
    """Role grants; granting and revoking need every permission of the role."""

    queryset = Membership.objects.select_related("organization", "project", "user")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    lookups = Lookups(org="organization", project="project")

    def perform_create_in(self, serializer, organization, project) -> Membership:
        data = serializer.validated_data
        return grant_role(
            data["user"], organization, data["role"], project=project, **self.acting
        )

    def perform_destroy_in(self, instance: Membership) -> None:
        revoke_role(
            instance.user,
            instance.organization,
            instance.role,
            project=instance.project,
            source=instance.source,
            **self.acting,
        )


def _role_specs(roles: list[dict]) -> list[tuple]:
    return [(entry["role"], entry.get("project")) for entry in roles]


class GroupViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, IamViewSet
):
    """Groups and their members and roles; members hold every role of the group."""

    queryset = Group.objects.select_related("organization").prefetch_related(
        "members", "roles"
    )
    serializer_class = GroupSerializer
    filterset_class = GroupFilter

    def perform_create_in(self, serializer, organization, project) -> Group:
        data = serializer.validated_data
        group = create_group(
            organization,
            data["name"],
            external_id=data.get("external_id", ""),
            roles=_role_specs(data.get("roles", [])),
            **self.acting,
        )
        if data.get("members"):
            set_group_members(group, data["members"], **self.acting)
        return group

    def perform_update_in(self, serializer) -> Group:
        group = serializer.instance
        data = serializer.validated_data
        for name in ("name", "external_id"):
            if name in data:
                setattr(group, name, data[name])
        group.save()
        if "roles" in data:
            set_group_roles(group, _role_specs(data["roles"]), **self.acting)
        if "members" in data:
            set_group_members(group, data["members"], **self.acting)
        return Group.objects.prefetch_related("members", "roles").get(pk=group.pk)

    def perform_destroy_in(self, instance: Group) -> None:
        delete_group(instance, **self.acting)


class PolicyViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, IamViewSet
):
    """Allow and deny policies with attribute conditions."""

    queryset = Policy.objects.select_related("organization")
    serializer_class = PolicySerializer
    filterset_class = PolicyFilter

    def perform_create_in(self, serializer, organization, project) -> Policy:
        document = dict(serializer.validated_data)
        document.pop("organization", None)
        return create_policy(organization, document, **self.acting)

    def perform_update_in(self, serializer) -> Policy:
        changes = dict(serializer.validated_data)
        changes.pop("organization", None)
        return update_policy(serializer.instance, changes, **self.acting)

    def perform_destroy_in(self, instance: Policy) -> None:
        delete_policy(instance, **self.acting)


class ServiceTokenViewSet(CreateMixin, ListRetrieveMixin, IamViewSet):
    """Service tokens; the plaintext appears only in the create response."""

    queryset = ServiceToken.objects.select_related("organization")
    serializer_class = ServiceTokenSerializer
    filterset_class = ServiceTokenFilter
    verbs = {"revoke": "revoke"}

    @extend_schema(responses={201: IssuedTokenSerializer})
    def create(self, request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create_in(self, serializer, organization, project) -> ServiceToken:
        data = serializer.validated_data
        issued = issue_service_token(
            organization,
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data.get("expires_at"),
            **self.acting,
        )
        self._plaintext = issued.plaintext
        return issued.token

    def created_body(self, instance: ServiceToken) -> dict:
        instance.token = self._plaintext
        return IssuedTokenSerializer(
            instance, context=self.get_serializer_context()
        ).data

    @extend_schema(request=None, responses={200: ServiceTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None) -> Response:
        """Revoke the token; revoking a revoked token changes nothing."""
        token = self.get_object()
        before = snapshot(token)

        with transaction.atomic():
            revoke_service_token(token)
            self.record("revoke", token, before, snapshot(token))
        return Response(self.get_serializer(token).data)


TAG_VERBS = {
    "create": "update",
    "update": "update",
    "partial_update": "update",
    "destroy": "update",
}


class UserTagsViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, IamViewSet
):
    """Tags on users, matched by `user_tags` policy conditions."""

    queryset = UserTags.objects.select_related("organization", "user")
    serializer_class = UserTagsSerializer
    verbs = TAG_VERBS

    def perform_create_in(self, serializer, organization, project) -> UserTags:
        user = serializer.validated_data["user"]
        if not roles_for(user, organization):
            raise serializers.ValidationError(
                {"user": [f"User {user.pk} is not a member of this organization."]}
            )
        return set_user_tags(user, organization, serializer.validated_data["tags"])

    def perform_update_in(self, serializer) -> UserTags:
        row = serializer.instance
        return set_user_tags(
            row.user, row.organization, serializer.validated_data.get("tags", row.tags)
        )


class ResourceTagsViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, IamViewSet
):
    """Tags on resources by resource name, matched by `resource_tags` conditions."""

    queryset = ResourceTags.objects.select_related("organization")
    serializer_class = ResourceTagsSerializer
    verbs = TAG_VERBS

    def perform_create_in(self, serializer, organization, project) -> ResourceTags:
        data = serializer.validated_data
        return set_resource_tags(organization, data["resource"], data["tags"])

    def perform_update_in(self, serializer) -> ResourceTags:
        row = serializer.instance
        return set_resource_tags(
            row.organization,
            row.resource,
            serializer.validated_data.get("tags", row.tags),
        )
