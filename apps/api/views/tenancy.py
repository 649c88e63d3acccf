from django.db import transaction
from rest_framework import status
from rest_framework.response import Response

from apps.api.filters import ProjectFilter
from apps.api.serializers.tenancy import OrganizationSerializer, ProjectSerializer
from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam import nrn
from apps.iam.changelog import snapshot
from apps.iam.roles import ORG_OWNER
from apps.iam.scoping import Lookups
from apps.iam.services import grant_role
from apps.tenancy.models import Organization, Project


class OrganizationViewSet(ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet):
    """Organizations; only superusers create them, owners delete them."""

    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    # The row is the organization itself.
    lookups = Lookups(org="pk")
    lookup_field = "slug"
    # Only slugs route here; anything else is a 404 before a query runs.
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    def create(self, request, *args, **kwargs) -> Response:
        self.require(
            self.resource.permission("create"),
            nrn.build("tenancy", "", "organization", "*"),
        )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        owner = serializer.validated_data.pop("owner", None)

        with transaction.atomic():
            organization = serializer.save()
            self.record("create", organization, None, snapshot(organization))
            if owner is not None:
                grant_role(
                    owner,
                    organization,
                    ORG_OWNER,
                    actor=self.evaluator.actor,
                    context=self.evaluator.context,
                )
        return Response(
            self.get_serializer(organization).data, status=status.HTTP_201_CREATED
        )

    def perform_update_in(self, serializer) -> Organization:
        serializer.validated_data.pop("owner", None)
        return serializer.save()


class ProjectViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    queryset = Project.objects.select_related("organization")
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter
    lookups = Lookups(org="organization", project="")
