from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.hooks.api.serializers import (
    HookSerializer,
    PolicyTestRequestSerializer,
    PolicyTestSerializer,
)
from apps.hooks.models import Hook
from apps.hooks.services import run_policy_test, save_hook
from apps.iam.resources import scope_name
from apps.iam.scoping import Lookups


@contextmanager
def field_errors():
    """Turn a model's validation errors into a 400 with field errors."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


class HookViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    """Hooks of an organization; hooks for every organization are managed in the admin."""

    queryset = Hook.objects.select_related("organization")
    serializer_class = HookSerializer
    lookups = Lookups(org="organization")
    filterset_fields = ["kind", "stage", "enabled"]
    verbs = {"test": "test"}

    def perform_create_in(self, serializer, organization, project) -> Hook:
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        with field_errors():
            return save_hook(Hook(organization=organization, **data))

    def perform_update_in(self, serializer) -> Hook:
        hook = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(hook, name, value)
        with field_errors():
            return save_hook(hook)

    @extend_schema(request=PolicyTestRequestSerializer, responses=PolicyTestSerializer)
    @action(detail=False, methods=["post"])
    def test(self, request: Request) -> Response:
        """Run the organization's enabled hooks on sample text and return each decision."""
        organization, _ = self.target_scope(request.data)
        self.require(self.permission(), scope_name(self.resource, organization))
        form = PolicyTestRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)

        hooks = list(
            Hook.objects.filter(enabled=True)
            .filter(Q(organization=organization) | Q(organization__isnull=True))
            .order_by("priority", "name")
        )
        result = run_policy_test(
            hooks,
            form.validated_data["text"],
            stage=form.validated_data["stage"],
            region=form.validated_data["region"],
        )
        body = {
            "decision": result.decision,
            "output": result.output,
            "error": result.error,
            "tags": result.tags,
            "records": [record.to_dict() for record in result.records],
        }
        return Response(PolicyTestSerializer(body).data)
