from rest_framework.routers import SimpleRouter

from apps.compliance.api.views import KillSwitchViewSet, PassthroughFlagViewSet

router = SimpleRouter()
router.register("kill-switches", KillSwitchViewSet, basename="kill-switch")
router.register(
    "passthrough-flags", PassthroughFlagViewSet, basename="passthrough-flag"
)

urlpatterns = router.urls
