from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.api.filters import VirtualKeyFilter
from apps.api.serializers.keys import IssuedKeySerializer, VirtualKeySerializer
from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam.changelog import snapshot
from apps.iam.scoping import Lookups
from apps.iam.selectors import roles_for
from apps.keys.models import VirtualKey
from apps.keys.services import issue_key, revoke_key, rotate_key


class VirtualKeyViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    """Virtual keys; the plaintext appears only in the create and rotate responses."""

    queryset = VirtualKey.objects.select_related("organization", "project")
    serializer_class = VirtualKeySerializer
    filterset_class = VirtualKeyFilter
    lookups = Lookups(org="organization", project="project")
    verbs = {"rotate": "rotate", "revoke": "revoke"}

    def _check_owner(self, owner, organization) -> None:
        if owner is not None and not roles_for(owner, organization):
            raise serializers.ValidationError(
                {"owner": [f"User {owner.pk} is not a member of this organization."]}
            )

    @extend_schema(responses={201: IssuedKeySerializer})
    def create(self, request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create_in(self, serializer, organization, project) -> VirtualKey:
        data = serializer.validated_data
        self._check_owner(data.get("owner"), organization)
        issued = issue_key(
            organization=organization,
            project=project,
            name=data["name"],
            allowed_models=data.get("allowed_models", []),
            expires_at=data.get("expires_at"),
            owner=data.get("owner"),
        )
        self._plaintext = issued.plaintext
        return issued.key

    def created_body(self, instance: VirtualKey) -> dict:
        instance.key = self._plaintext
        return IssuedKeySerializer(instance, context=self.get_serializer_context()).data

    def perform_update_in(self, serializer) -> VirtualKey:
        self._check_owner(
            serializer.validated_data.get("owner"), serializer.instance.organization
        )
        return serializer.save()

    @extend_schema(request=None, responses={201: IssuedKeySerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None) -> Response:
        """Revoke the key and issue a replacement with the same settings."""
        key = self.get_object()
        before = snapshot(key)

        with transaction.atomic():
            issued = rotate_key(key)
            self.record("rotate", key, before, snapshot(issued.key))
        issued.key.key = issued.plaintext
        body = IssuedKeySerializer(
            issued.key, context=self.get_serializer_context()
        ).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: VirtualKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None) -> Response:
        """Revoke the key; revoking a revoked key changes nothing."""
        key = self.get_object()
        before = snapshot(key)

        with transaction.atomic():
            revoke_key(key)
            self.record("revoke", key, before, snapshot(key))
        return Response(self.get_serializer(key).data)
