from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.actors import actor_of
from apps.api.filters import UserFilter, get_organization
from apps.api.serializers.iam import (
    PermissionSerializer,
    RoleSerializer,
    UserSerializer,
)
from apps.api.viewsets import ListRetrieveMixin, ScopedViewSet
from apps.iam.models import ServiceToken
from apps.iam.permissions import CATALOG
from apps.iam.resources import ResourceType, scope_name
from apps.iam.roles import PROJECT_SCOPED_ROLES, ROLE_CHOICES, ROLE_PERMISSIONS
from apps.iam.scoping import member_organizations
from apps.iam.selectors import list_member_organizations, roles_for
from apps.tenancy.models import Organization

USER_RESOURCE = ResourceType("iam", "user", "organization")


def users_of(organizations) -> QuerySet:
    """Return the users holding a role, directly or through a group, in organizations."""
    return (
        get_user_model()
        .objects.filter(
            Q(memberships__organization__in=organizations)
            | Q(
                iam_groups__organization__in=organizations,
                iam_groups__roles__isnull=False,
            )
        )
        .distinct()
        .order_by("username")
    )


class UserViewSet(ListRetrieveMixin, ScopedViewSet):
    """Users of the actor's organizations; each is visible through a shared org."""

    queryset = get_user_model().objects.all()
    serializer_class = UserSerializer
    filterset_class = UserFilter

    @property
    def resource(self) -> ResourceType:
        return USER_RESOURCE

    def readable_organizations(self) -> list[Organization]:
        permission = self.permission("list")
        return [
            organization
            for organization in member_organizations(self.evaluator)
            if self.evaluator.authorize(
                permission, scope_name(USER_RESOURCE, organization)
            )
        ]

    def get_queryset(self) -> QuerySet:
        organizations = member_organizations(self.evaluator)
        if self.action != "list":
            return users_of(list(organizations))
        wanted = self.request.query_params.get("organization")
        readable = self.readable_organizations()
        if wanted:
            organization = get_organization(organizations, wanted)
            readable = [o for o in readable if o.pk == organization.pk]
        if not readable:
            raise PermissionDenied(
                f"Permission {self.permission()} is not granted in any of your organizations."
            )
        return users_of(readable)

    def get_object(self):
        user = super(ScopedViewSet, self).get_object()
        shared = list_member_organizations(user) & member_organizations(self.evaluator)
        for organization in shared:
            if self.evaluator.authorize(
                self.permission(), scope_name(USER_RESOURCE, organization)
            ):
                return user
        raise PermissionDenied(
            f"Permission {self.permission()} is denied for user {user.pk}."
        )


class MeView(APIView):
    """The calling user or service token and what it holds."""

    @extend_schema(responses={200: dict})
    def get(self, request) -> Response:
        actor = actor_of(request)
        if isinstance(actor, ServiceToken):
            return Response(
                {
                    "kind": "service_token",
                    "id": actor.pk,
                    "name": actor.name,
                    "organization": actor.organization.slug,
                    "scopes": actor.scopes,
                }
            )
        organizations = []
        for organization in list_member_organizations(actor):
            grants = [
                {
                    "role": grant.role,
                    "project": grant.project_id,
                    "source": grant.source,
                    "group": grant.group_id,
                }
                for grant in roles_for(actor, organization)
            ]
            organizations.append({"organization": organization.slug, "roles": grants})
        body = {
            "kind": "user",
            "id": actor.pk,
            "username": actor.get_username(),
            "is_superuser": actor.is_superuser,
            "organizations": organizations,
        }
        return Response(body)


class RoleListView(APIView):
    """The built-in roles and the permissions each grants."""

    @extend_schema(responses={200: RoleSerializer(many=True)})
    def get(self, request) -> Response:
        roles = [
            {
                "name": name,
                "label": label,
                "project_scoped": name in PROJECT_SCOPED_ROLES,
                "permissions": sorted(ROLE_PERMISSIONS[name]),
            }
            for name, label in ROLE_CHOICES
        ]
        return Response(RoleSerializer(roles, many=True).data)


class PermissionListView(APIView):
    """The permission catalog."""

    @extend_schema(responses={200: PermissionSerializer(many=True)})
    def get(self, request) -> Response:
        rows = [{"name": name, "description": text} for name, text in CATALOG.items()]
        return Response(PermissionSerializer(rows, many=True).data)
