"""The routing endpoints, registered on the API's one router in apps.api.urls."""

from rest_framework.routers import BaseRouter

from apps.routing.api.views import RouteViewSet


def register(router: BaseRouter) -> None:
    """Register the routing viewsets on router."""
    router.register("routes", RouteViewSet, basename="route")
