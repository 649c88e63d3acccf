from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.actors import actor_of
from apps.api.viewsets import CreateMixin, ListRetrieveMixin, ScopedViewSet
from apps.compliance.api.serializers import (
    KillSwitchSerializer,
    PassthroughFlagSerializer,
    ReleaseSerializer,
    SwitchOffSerializer,
)
from apps.compliance.models import KillSwitch, PassthroughFlag
from apps.compliance.services import end_passthrough, save_control
from apps.iam.changelog import snapshot
from apps.iam.scoping import Lookups


@contextmanager
def field_errors():
    """Turn a model's validation errors into a 400 with field errors."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


def actor_name(request: Request) -> str:
    actor = actor_of(request)
    return getattr(actor, "get_username", lambda: str(actor))()


class KillSwitchViewSet(CreateMixin, ListRetrieveMixin, ScopedViewSet):
    """Kill switches of an organization or of one of its keys; global ones are in the admin."""

    queryset = KillSwitch.objects.select_related("organization", "key")
    serializer_class = KillSwitchSerializer
    lookups = Lookups(org="organization")
    filterset_fields = ["scope", "active"]
    verbs = {"release": "update"}

    def perform_create_in(self, serializer, organization, project) -> KillSwitch:
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        key = data.get("key")
        if key is not None and key.organization_id != organization.pk:
            raise NotFound(
                f'Key "{key.pk}" does not exist in organization "{organization.slug}".'
            )
        switch = KillSwitch(
            organization=organization if data["scope"] == "org" else None, **data
        )
        with field_errors():
            save_control(switch, actor=actor_name(self.request))
        return switch

    @extend_schema(request=ReleaseSerializer, responses=KillSwitchSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Release the switch so traffic flows again; repeat calls change nothing."""
        switch = self.get_object()
        form = ReleaseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if switch.active:
            with transaction.atomic():
                before = snapshot(switch)
                switch.active = False
                save_control(
                    switch,
                    actor=actor_name(request),
                    reason=form.validated_data["reason"],
                )
                self.record("release", switch, before, snapshot(switch))
        return Response(self.get_serializer(switch).data)


class PassthroughFlagViewSet(CreateMixin, ListRetrieveMixin, ScopedViewSet):
    """Emergency passthrough flags of an organization; other scopes are in the admin."""

    queryset = PassthroughFlag.objects.select_related("organization")
    serializer_class = PassthroughFlagSerializer
    lookups = Lookups(org="organization")
    verbs = {"end": "update"}

    def perform_create_in(self, serializer, organization, project) -> PassthroughFlag:
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        flag = PassthroughFlag(scope="org", organization=organization, **data)
        with field_errors():
            save_control(flag, actor=actor_name(self.request))
        return flag

    @extend_schema(request=SwitchOffSerializer, responses=PassthroughFlagSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str | None = None) -> Response:
        """Switch the flag off before its expiry; repeat calls change nothing."""
        flag = self.get_object()
        form = SwitchOffSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with transaction.atomic():
            before = snapshot(flag)
            end_passthrough(
                flag, actor=actor_name(request), reason=form.validated_data["reason"]
            )
            self.record("end", flag, before, snapshot(flag))
        return Response(self.get_serializer(flag).data)
