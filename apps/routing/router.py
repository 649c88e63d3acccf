"""The gateway's router factory: routes from the snapshot, health from settings."""

from typing import TYPE_CHECKING

from django.conf import settings

from apps.routing.health import gateway_health
from nexus.engine.routing.router import RoutingRouter

if TYPE_CHECKING:
    from apps.gateway.runtime import GatewayRuntime


def build_router(runtime: "GatewayRuntime") -> RoutingRouter:
    """Return the router of one gateway runtime."""
    return RoutingRouter(
        lambda: runtime.snapshot,
        gateway_health(),
        sync_seconds=settings.NEXUS_ROUTING_HEALTH_SYNC_SECONDS,
    )
