"""Registry of pipeline stages and the router, filled in by each app's ready().

Stages run in STAGE_ORDER whatever order the apps register in: kill switches first,
then request hooks, then quota reservations, then the cache, so a cache hit has
already passed policy and is counted against quotas.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from nexus.engine.stages import Stage
from nexus.engine.targets import Router

if TYPE_CHECKING:
    from apps.gateway.runtime import GatewayRuntime

STAGE_ORDER = ["controls", "hooks", "quotas", "cache"]

StageFactory = Callable[["GatewayRuntime"], Stage]
RouterFactory = Callable[["GatewayRuntime"], Router]

_stage_factories: dict[str, StageFactory] = {}
_router_factory: list[RouterFactory] = []


def register_stage(name: str, factory: StageFactory) -> None:
    """Register the factory of a named stage; the name must be in STAGE_ORDER."""
    if name not in STAGE_ORDER:
        raise ValueError(
            f"Unknown stage {name!r}; known stages: {', '.join(STAGE_ORDER)}."
        )
    _stage_factories[name] = factory


def register_router(factory: RouterFactory) -> None:
    """Register the factory of the router that plans targets."""
    _router_factory[:] = [factory]


def build_stages(runtime: "GatewayRuntime") -> list[Stage]:
    return [
        _stage_factories[name](runtime)
        for name in STAGE_ORDER
        if name in _stage_factories
    ]


def build_router(runtime: "GatewayRuntime") -> Router:
    return _router_factory[0](runtime) if _router_factory else Router()
