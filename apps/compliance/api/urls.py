"""The compliance endpoints, registered on the API's one router in apps.api.urls."""

from rest_framework.routers import BaseRouter

from apps.compliance.api.views import KillSwitchViewSet, PassthroughFlagViewSet


def register(router: BaseRouter) -> None:
    """Register the compliance viewsets on router."""
    router.register("kill-switches", KillSwitchViewSet, basename="kill-switch")
    router.register(
        "passthrough-flags", PassthroughFlagViewSet, basename="passthrough-flag"
    )
