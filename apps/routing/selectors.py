"""Read queries of the routing app: routes with the health of their targets."""

from dataclasses import dataclass

from apps.providers.models import Model
from apps.routing.health import HealthRow, read_health
from apps.routing.models import Route
from apps.routing.snapshot import build_route_table
from nexus.engine.routing.config import parse_node, strategy_name
from nexus.engine.routing.errors import RouteConfigError
from nexus.engine.routing.router import RouteTable, route_models, target_id


@dataclass(frozen=True)
class RouteHealth:
    """A route, its top strategy and the health of every model it can send to.

    `missing` lists model names the route names that no longer exist.
    """

    route: Route
    strategy: str
    targets: list[HealthRow]
    missing: list[str]


def list_route_health(routes: list[Route] | None = None) -> list[RouteHealth]:
    """Return the health of every target of the given routes (default: all routes)."""
    routes = list(Route.objects.all()) if routes is None else routes
    table = build_route_table()
    models = {model.name: model for model in Model.objects.select_related("connection")}
    for model in list(models.values()):
        for alias in model.aliases or ():
            models.setdefault(alias, model)
    plans = [_targets_of(route, table, models) for route in routes]
    ids = sorted({target_id(model) for _, found, _ in plans for model in found})
    health = read_health(ids)
    result = []
    for route, (strategy, found, missing) in zip(routes, plans, strict=True):
        rows = [
            HealthRow(
                model=model.name,
                provider=model.connection.name,
                target_id=target_id(model),
                health=health[target_id(model)],
            )
            for model in found
        ]
        result.append(RouteHealth(route, strategy, rows, missing))
    return result


def _targets_of(
    route: Route, table: RouteTable, models: dict[str, Model]
) -> tuple[str, list[Model], list[str]]:
    try:
        node = parse_node(route.config)
    except RouteConfigError:
        return "invalid", [], []
    names = sorted(route_models(node, table))
    found = [models[name] for name in names if name in models]
    missing = [name for name in names if name not in models]
    return strategy_name(node), found, missing
