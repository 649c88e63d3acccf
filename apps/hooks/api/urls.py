from rest_framework.routers import SimpleRouter

from apps.hooks.api.views import HookViewSet

router = SimpleRouter()
router.register("hooks", HookViewSet, basename="hook")

urlpatterns = router.urls
