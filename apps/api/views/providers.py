from collections.abc import Mapping
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.exceptions import PermissionDenied, ValidationError

from apps.api.filters import MAX_ID, ModelFilter, ProviderConnectionFilter
from apps.api.serializers.providers import ModelSerializer, ProviderConnectionSerializer
from apps.api.viewsets import (
    ASCII_DIGITS,
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam.resources import scope_name
from apps.iam.scoping import Lookups, member_organizations
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import set_credential
from apps.tenancy.models import Organization, Project


class SharedOrOwnedViewSet(ScopedViewSet):
    """Rows that belong to one organization, or to none when the platform shares them.

    Members see their organizations' rows and the shared ones. Shared rows are read
    with the providers read permission of any of the actor's organizations and
    changed by superusers only, which the evaluator decides for platform names.
    """

    def get_queryset(self) -> QuerySet:
        qs = self.queryset.all()
        user = self.evaluator.user
        if user is None or not user.is_superuser:
            member_ids = member_organizations(self.evaluator).values("pk")
            qs = qs.filter(self._shared() | self.lookups.org_in(member_ids))
        if self.action != "list":
            return qs
        return self.list_queryset(qs)

    def list_queryset(self, qs: QuerySet) -> QuerySet:
        """Return the readable rows; `organization` limits them to one organization's own."""
        shared_readable = self.evaluator.authorize(
            self.permission(), scope_name(self.resource, None)
        ).allowed
        try:
            owned = super().list_queryset(qs.exclude(self._shared()))
        except PermissionDenied:
            if not shared_readable:
                raise
            owned = qs.none()
        if self.request.query_params.get("organization") or not shared_readable:
            return owned
        return owned | qs.filter(self._shared())

    def _shared(self) -> Q:
        return Q(**{f"{self.lookups.org}__isnull": True})


class ProviderConnectionViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, SharedOrOwnedViewSet
):
    """Provider connections of an organization, or shared when `organization` is empty.

    The credential is write-only.
    """

    queryset = ProviderConnection.objects.select_related("organization")
    serializer_class = ProviderConnectionSerializer
    filterset_class = ProviderConnectionFilter
    lookups = Lookups(org="organization")

    def target_scope(self, data: Any) -> tuple[Organization | None, Project | None]:
        # An omitted or null organization requests a shared platform connection.
        if isinstance(data, Mapping) and data.get("organization") in (None, ""):
            return None, None
        return super().target_scope(data)

    def perform_create_in(
        self, serializer, organization, project
    ) -> ProviderConnection:
        credential = serializer.validated_data.pop("credential", "")
        serializer.validated_data.pop("organization", None)
        connection = ProviderConnection(
            organization=organization, **serializer.validated_data
        )
        set_credential(connection, credential)
        connection.save()
        return connection

    def perform_update_in(self, serializer) -> ProviderConnection:
        credential = serializer.validated_data.pop("credential", None)
        connection = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(connection, name, value)
        if credential is not None:
            set_credential(connection, credential)
        connection.save()
        return connection


class ProviderModelViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, SharedOrOwnedViewSet
):
    """Public model names with their connection and prices (USD per million tokens).

    A model belongs to the organization that owns its connection, or is shared
    when its connection is shared.
    """

    queryset = Model.objects.select_related("connection__organization")
    serializer_class = ModelSerializer
    filterset_class = ModelFilter
    lookups = Lookups(org="connection__organization")

    def get_serializer(self, *args: Any, **kwargs: Any):
        serializer = super().get_serializer(*args, **kwargs)
        # Schema generation builds serializers without a request or an evaluator,
        # and lists only read.
        if kwargs.get("many") or not hasattr(self, "evaluator"):
            return serializer
        # Connections of other organizations are reported as missing.
        serializer.fields["connection"].queryset = self.usable_connections()
        return serializer

    def usable_connections(self) -> QuerySet[ProviderConnection]:
        """Return the connections the actor's models may use: own and shared."""
        qs = ProviderConnection.objects.select_related("organization")
        user = self.evaluator.user
        if user is not None and user.is_superuser:
            return qs
        member_ids = member_organizations(self.evaluator).values("pk")
        return qs.filter(Q(organization__isnull=True) | Q(organization__in=member_ids))

    def target_scope(self, data: Any) -> tuple[Organization | None, Project | None]:
        """Return the organization of the connection named in data; 400 if unusable."""
        if not isinstance(data, Mapping):
            return super().target_scope(data)
        return self._connection_in(data.get("connection")).organization, None

    def _connection_in(self, value: Any) -> ProviderConnection:
        if value in (None, ""):
            raise ValidationError({"connection": ["This field is required."]})
        connection = None
        if ASCII_DIGITS.fullmatch(str(value)) and int(value) <= MAX_ID:
            connection = self.usable_connections().filter(pk=int(value)).first()
        if connection is None:
            raise ValidationError(
                {"connection": [f'Provider connection "{value}" does not exist.']}
            )
        return connection

    def perform_create_in(self, serializer, organization, project) -> Model:
        return serializer.save()

    def perform_update_in(self, serializer) -> Model:
        moved_to = serializer.validated_data.get("connection")
        if moved_to is not None and moved_to.pk != serializer.instance.connection_id:
            # Moving a model to another owner needs the permission there as well.
            self.require(
                self.permission(), scope_name(self.resource, moved_to.organization)
            )
        return serializer.save()
