"""The routing part of the config snapshot: every enabled route, parsed."""

import logging

from apps.providers.models import Model
from apps.routing.models import Route
from apps.tenancy.models import Organization, Project
from nexus.engine.routing.config import parse_node
from nexus.engine.routing.errors import RouteConfigError
from nexus.engine.routing.router import RouteEntry, RouteTable

logger = logging.getLogger(__name__)


def build_route_table() -> RouteTable:
    """Read enabled routes into a RouteTable; a route whose config no longer parses is skipped."""
    names = _public_names()
    routes = []
    for route in Route.objects.filter(enabled=True):
        try:
            strategy = parse_node(route.config)
        except RouteConfigError as exc:
            logger.error("route %s skipped: %s", route.name, exc)
            continue
        routes.append(
            RouteEntry(
                id=route.pk,
                name=route.name,
                model=names.get(route.model, route.model),
                strategy=strategy,
                priority=route.priority,
                org_id=route.organization_id,
                project_id=route.project_id,
                key_id=route.key_id,
                headers=tuple(sorted((route.match_headers or {}).items())),
                metadata=tuple(sorted((route.match_metadata or {}).items())),
                retries=route.retries,
                backoff_seconds=route.backoff_seconds,
                max_backoff_seconds=route.max_backoff_seconds,
                timeout_seconds=route.timeout_seconds,
                failover_statuses=frozenset(route.failover_statuses or ()),
            )
        )
    return RouteTable(
        routes=tuple(routes),
        org_slugs=dict(Organization.objects.values_list("id", "slug")),
        project_slugs=dict(Project.objects.values_list("id", "slug")),
    )


def _public_names() -> dict[str, str]:
    """Map every model name and alias to the model's name, as the gateway resolves it."""
    names: dict[str, str] = {}
    for model in Model.objects.only("name", "aliases"):
        names[model.name] = model.name
        for alias in model.aliases or ():
            names.setdefault(alias, model.name)
    return names
