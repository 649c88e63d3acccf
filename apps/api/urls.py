"""The routes of the control-plane API under /api/.

Every viewset, the ones of other apps included, is registered on the one router
below, so the API root (`GET /api/v1/`) lists every resource. A path that no route
matches returns 404 with the API's error body.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from apps.api.views.audit import AdminAuditLogViewSet, AuditEventViewSet
from apps.api.views.iam import (
    GroupViewSet,
    MembershipViewSet,
    PolicyViewSet,
    ResourceTagsViewSet,
    ServiceTokenViewSet,
    UserTagsViewSet,
)
from apps.api.views.keys import VirtualKeyViewSet
from apps.api.views.providers import ProviderConnectionViewSet, ProviderModelViewSet
from apps.api.views.root import ApiRouter, UnknownPathView
from apps.api.views.tenancy import OrganizationViewSet, ProjectViewSet
from apps.api.views.users import MeView, PermissionListView, RoleListView, UserViewSet
from apps.compliance.api.urls import register as register_compliance
from apps.hooks.api.urls import register as register_hooks
from apps.quotas.api.urls import register as register_quotas
from apps.routing.api.urls import register as register_routing

# The views outside the router that the API root lists too, by URL name.
PLAIN_VIEWS = {"me": "me", "roles": "role-list", "permissions": "permission-list"}

router = ApiRouter(extra_root_entries=PLAIN_VIEWS)
router.register("orgs", OrganizationViewSet, basename="organization")
router.register("projects", ProjectViewSet, basename="project")
router.register("users", UserViewSet, basename="user")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("groups", GroupViewSet, basename="group")
router.register("policies", PolicyViewSet, basename="policy")
router.register("service-tokens", ServiceTokenViewSet, basename="service-token")
router.register("user-tags", UserTagsViewSet, basename="user-tags")
router.register("resource-tags", ResourceTagsViewSet, basename="resource-tags")
router.register("keys", VirtualKeyViewSet, basename="key")
router.register(
    "provider-connections", ProviderConnectionViewSet, basename="provider-connection"
)
router.register("models", ProviderModelViewSet, basename="model")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("admin-audit-log", AdminAuditLogViewSet, basename="admin-audit-log")
register_routing(router)
register_quotas(router)
register_hooks(router)
register_compliance(router)

urlpatterns = [
    path("v1/me/", MeView.as_view(), name="me"),
    path("v1/roles/", RoleListView.as_view(), name="role-list"),
    path("v1/permissions/", PermissionListView.as_view(), name="permission-list"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path(
        "redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"
    ),
    # Last, so that it matches only what no route above matches.
    re_path(r"^.*$", UnknownPathView.as_view(), name="api-unknown-path"),
]
