"""The quotas endpoints, registered on the API's one router in apps.api.urls."""

from rest_framework.routers import BaseRouter

from apps.quotas.api.views import (
    QuotaAlertViewSet,
    QuotaSettingsViewSet,
    QuotaViewSet,
    UsageRollupViewSet,
)


def register(router: BaseRouter) -> None:
    """Register the quotas viewsets on router."""
    router.register("quotas", QuotaViewSet, basename="quota")
    router.register("quota-settings", QuotaSettingsViewSet, basename="quota-settings")
    router.register("quota-alerts", QuotaAlertViewSet, basename="quota-alert")
    router.register("usage-rollups", UsageRollupViewSet, basename="usage-rollup")
