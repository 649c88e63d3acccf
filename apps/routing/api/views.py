from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api.viewsets import (
    CreateMixin,
    DestroyMixin,
    ListRetrieveMixin,
    ScopedViewSet,
    UpdateMixin,
)
from apps.iam.scoping import Lookups
from apps.routing.api.serializers import RouteHealthSerializer, RouteSerializer
from apps.routing.models import Route
from apps.routing.selectors import RouteHealth, list_route_health


class RouteViewSet(
    CreateMixin, ListRetrieveMixin, UpdateMixin, DestroyMixin, ScopedViewSet
):
    """Routes: platform configuration that superusers change; validated on save."""

    queryset = Route.objects.select_related("organization", "project", "key")
    serializer_class = RouteSerializer
    lookups = Lookups(org=None)
    filterset_fields = ["model", "enabled", "organization"]
    verbs = {"health": "read"}

    @extend_schema(responses=RouteHealthSerializer)
    @action(detail=True, methods=["get"])
    def health(self, request: Request, pk: str | None = None) -> Response:
        """Return the circuit state, error rate and latency of each target of the route."""
        route = self.get_object()
        report = list_route_health([route])[0]
        return Response(RouteHealthSerializer(_health_body(report)).data)


def _health_body(report: RouteHealth) -> dict:
    return {
        "route": report.route.name,
        "strategy": report.strategy,
        "targets": [
            {
                "model": row.model,
                "provider": row.provider,
                "target_id": row.target_id,
                "state": row.health.state,
                "requests": row.health.requests,
                "failures": row.health.failures,
                "error_rate": row.health.error_rate,
                "consecutive_failures": row.health.consecutive_failures,
                "latency_ms": row.health.latency_ms,
                "headroom": row.health.headroom,
                "open_until": row.health.open_until,
            }
            for row in report.targets
        ],
        "missing": report.missing,
    }
