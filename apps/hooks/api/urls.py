"""The hooks endpoints, registered on the API's one router in apps.api.urls."""

from rest_framework.routers import BaseRouter

from apps.hooks.api.views import HookViewSet


def register(router: BaseRouter) -> None:
    """Register the hooks viewsets on router."""
    router.register("hooks", HookViewSet, basename="hook")
