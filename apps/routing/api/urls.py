from rest_framework.routers import SimpleRouter

from apps.routing.api.views import RouteViewSet

router = SimpleRouter()
router.register("routes", RouteViewSet, basename="route")

urlpatterns = router.urls
