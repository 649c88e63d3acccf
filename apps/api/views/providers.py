from apps.api.filters import ModelFilter, ProviderConnectionFilter
from apps.api.serializers.providers import ModelSerializer, ProviderConnectionSerializer
from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam.scoping import Lookups
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import set_credential


class ProviderConnectionViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    """Provider connections, shared by every organization; the credential is write-only."""

    queryset = ProviderConnection.objects.all()
    serializer_class = ProviderConnectionSerializer
    filterset_class = ProviderConnectionFilter
    lookups = Lookups(org=None)

    def perform_create_in(
        self, serializer, organization, project
    ) -> ProviderConnection:
        credential = serializer.validated_data.pop("credential", "")
        connection = ProviderConnection(**serializer.validated_data)
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
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    """Public model names with their connection and prices (USD per million tokens)."""

    queryset = Model.objects.select_related("connection")
    serializer_class = ModelSerializer
    filterset_class = ModelFilter
    lookups = Lookups(org=None)
