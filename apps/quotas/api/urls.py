from rest_framework.routers import SimpleRouter

from apps.quotas.api.views import (
    QuotaAlertViewSet,
    QuotaSettingsViewSet,
    QuotaViewSet,
    UsageRollupViewSet,
)

router = SimpleRouter()
router.register("quotas", QuotaViewSet, basename="quota")
router.register("quota-settings", QuotaSettingsViewSet, basename="quota-settings")
router.register("quota-alerts", QuotaAlertViewSet, basename="quota-alert")
router.register("usage-rollups", UsageRollupViewSet, basename="usage-rollup")

urlpatterns = router.urls
