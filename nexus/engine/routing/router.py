"""The routing router: match a route, evaluate its strategy, apply circuit breakers.

A request whose model has no matching route gets the default plan (the resolved
model alone, no retries). Its outcomes still feed the health tracker, so the admin
shows its health, but its open breaker does not stop it. An operator opts a model
into breaker skipping by giving it a route.
"""

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.access import key_reaches
from nexus.engine.call import Call
from nexus.engine.providers.base import ProviderAdapter
from nexus.engine.routing.config import (
    Node,
    RouteRefNode,
    TargetNode,
    strategy_name,
    walk,
)
from nexus.engine.routing.errors import NoAllowedTargetError, NoHealthyTargetError
from nexus.engine.routing.facts import (
    RequestFacts,
    request_metadata,
    requested_max_tokens,
)
from nexus.engine.routing.health import CLOSED, HALF_OPEN, HealthBackend
from nexus.engine.routing.outcomes import Outcome, parse_headroom
from nexus.engine.routing.strategies import Candidate, Selection, TargetInfo, evaluate
from nexus.engine.snapshot import ConnectionEntry, KeyEntry, ModelEntry, Snapshot
from nexus.engine.targets import Plan, Router, Target

logger = logging.getLogger(__name__)

EXTENSION = "routing"


@dataclass(frozen=True)
class RouteEntry:
    """A route as the traffic plane serves it."""

    id: int
    name: str
    model: str
    strategy: Node
    priority: int = 100
    org_id: int | None = None
    project_id: int | None = None
    key_id: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    retries: int = 0
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 8.0
    timeout_seconds: float | None = None
    failover_statuses: frozenset[int] = frozenset()

    @property
    def specificity(self) -> int:
        """Return how many matchers the route sets; more specific routes win ties."""
        scoped = sum(
            value is not None for value in (self.org_id, self.project_id, self.key_id)
        )
        return scoped + len(self.headers) + len(self.metadata)

    def matches(self, facts: RequestFacts) -> bool:
        if self.org_id is not None and self.org_id != facts.org_id:
            return False
        if self.project_id is not None and self.project_id != facts.project_id:
            return False
        if self.key_id is not None and self.key_id != facts.key_id:
            return False
        for name, value in self.headers:
            if facts.headers.get(name) != value:
                return False
        return all(facts.metadata.get(name) == value for name, value in self.metadata)


@dataclass(frozen=True)
class RouteTable:
    """Every enabled route, grouped by the model name it matches, best first."""

    routes: tuple[RouteEntry, ...] = ()
    org_slugs: Mapping[int, str] = field(default_factory=dict)
    project_slugs: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_model: dict[str, list[RouteEntry]] = {}
        for route in sorted(
            self.routes, key=lambda r: (r.priority, -r.specificity, r.id)
        ):
            by_model.setdefault(route.model, []).append(route)
        object.__setattr__(self, "by_model", by_model)
        object.__setattr__(
            self, "strategies", {route.name: route.strategy for route in self.routes}
        )

    def candidates(self, model: str) -> list[RouteEntry]:
        return self.by_model.get(model, [])

    def match(self, model: str, facts: RequestFacts) -> RouteEntry | None:
        """Return the first route for model whose matchers all hold, or None."""
        for route in self.candidates(model):
            if route.matches(facts):
                return route
        return None


def target_id(model: ModelEntry) -> str:
    """Return the health id of a model: its id and name, so a renamed model starts fresh.

    Takes a ModelEntry or any object with `id` and `name`, such as the Django row.
    """
    return f"{model.id}:{model.name}"


class RoutingRouter(Router):
    """Plan targets from the snapshot's route table and the shared target health."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        health: HealthBackend,
        *,
        rng: random.Random | None = None,
        sync_seconds: float = 0.5,
    ) -> None:
        self.snapshot = snapshot
        self.health = health
        self.rng = rng or random.Random()
        self.sync_seconds = sync_seconds
        self.sync_task: asyncio.Task | None = None
        self.sync_failures = 0

    def plan(
        self,
        call: Call,
        request: Any,
        model: ModelEntry,
        adapters: dict[int, ProviderAdapter],
        connections: dict[int, ConnectionEntry],
    ) -> Plan:
        """Return the targets for this request, best first, skipping open breakers."""
        self._ensure_sync()
        snapshot = self.snapshot()
        table: RouteTable | None = snapshot.extension(EXTENSION)
        routes = table.candidates(model.name) if table else []
        if not routes:
            return super().plan(call, request, model, adapters, connections)
        facts = request_facts(call, request, model, table)
        route = table.match(model.name, facts)
        if route is None:
            return super().plan(call, request, model, adapters, connections)
        call.response_headers["x-nexus-route"] = route.name

        selection = Selection(
            facts=facts,
            describe=lambda name: _describe(snapshot, name, call.key),
            health=self.health.get,
            routes=table.strategies,
            rng=self.rng,
            now=self.health.clock(),
        )
        candidates = _unique(evaluate(route.strategy, selection))
        targets, skipped = self._admitted(
            candidates, snapshot, adapters, selection, call.key
        )
        record = {"route": route.name, "strategy": strategy_name(route.strategy)}
        if selection.arms:
            record["arms"] = dict(selection.arms)
        if selection.excluded:
            record["excluded"] = [
                {"model": name, "reason": reason} for name, reason in selection.excluded
            ]
        if skipped:
            record["skipped"] = [
                {"model": name, "reason": why} for name, why, _ in skipped
            ]
        call.details["routing"] = record
        if not targets:
            _raise_empty(route, selection, skipped)
        return Plan(
            targets=targets,
            retries=route.retries,
            backoff_seconds=route.backoff_seconds,
            max_backoff_seconds=route.max_backoff_seconds,
            failover_statuses=route.failover_statuses,
            route=route.name,
            timeout_seconds=route.timeout_seconds,
        )

    def _admitted(self, candidates, snapshot, adapters, selection, key):
        """Return the targets to try and the (model, reason, wait) of skipped ones.

        A model on another organization's connection is excluded like a missing
        one, so the key's request never reaches that connection. Open breakers are
        skipped. A half-open target is kept only in first place,
        where its one probe request actually reaches it. Targets inside a
        provider's retry-after window move behind the others.
        """
        ready: list[Target] = []
        cooling: list[Target] = []
        skipped: list[tuple[str, str, float]] = []
        now = selection.now
        for candidate in candidates:
            model = _reachable_model(snapshot, candidate.target.model, key)
            adapter = adapters.get(model.connection_id) if model else None
            if model is None or adapter is None:
                selection.excluded.append(
                    (candidate.target.model, "model not available")
                )
                continue
            health_id = target_id(model)
            health = self.health.get(health_id)
            if health.state == HALF_OPEN and (ready or cooling):
                skipped.append((model.name, "circuit half-open", 0.0))
                continue
            if health.state != CLOSED and not self.health.admit(health_id):
                wait = max(0.0, health.open_until - now)
                skipped.append((model.name, f"circuit {health.state}", wait))
                continue
            target = _target(model, snapshot, adapter, candidate)
            if health.retry_after_until > now:
                cooling.append(target)
            else:
                ready.append(target)
        return ready + cooling, skipped

    def record(
        self,
        target: Target,
        *,
        ok: bool,
        latency_ms: float,
        status: int,
        retry_after: float | None = None,
        headers: Any = None,
    ) -> None:
        """Feed one attempt's outcome to the health tracker."""
        headroom = parse_headroom(headers) if headers is not None else None
        self.health.record(
            target_id(target.model),
            Outcome(
                ok=ok,
                latency_ms=latency_ms,
                status=status,
                retry_after=retry_after,
                headroom=headroom,
            ),
        )

    def route_target_ids(self) -> set[str]:
        """Return the health ids of every model a route can send to."""
        snapshot = self.snapshot()
        table: RouteTable | None = snapshot.extension(EXTENSION)
        if table is None:
            return set()
        ids = set()
        for route in table.routes:
            for name in route_models(route.strategy, table):
                model = snapshot.find_model(name)
                if model is not None:
                    ids.add(target_id(model))
        return ids

    def _ensure_sync(self) -> None:
        if self.sync_task is not None or type(self.health).sync is HealthBackend.sync:
            return
        self.sync_task = asyncio.get_running_loop().create_task(
            self._sync_forever(), name="nexus-routing-health-sync"
        )

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            try:
                await self.health.sync(self.route_target_ids())
                self.sync_failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.sync_failures += 1
                # One line per minute of outage at the default period, not one per sync.
                if self.sync_failures == 1 or self.sync_failures % 120 == 0:
                    logger.warning(
                        "routing health sync failed %s time(s); serving local health: %s",
                        self.sync_failures,
                        exc,
                    )

    async def close(self) -> None:
        if self.sync_task is not None:
            self.sync_task.cancel()
            await asyncio.gather(self.sync_task, return_exceptions=True)
            self.sync_task = None
        await self.health.close()


def route_models(
    node: Node, table: RouteTable, seen: set[str] | None = None
) -> set[str]:
    """Return the model names a strategy can reach, following route references."""
    seen = set() if seen is None else seen
    names: set[str] = set()
    for item in walk(node):
        if isinstance(item, TargetNode):
            names.add(item.model)
        elif isinstance(item, RouteRefNode) and item.route not in seen:
            seen.add(item.route)
            referenced = table.strategies.get(item.route)
            if referenced is not None:
                names |= route_models(referenced, table, seen)
    return names


def request_facts(
    call: Call, request: Any, model: ModelEntry, table: RouteTable
) -> RequestFacts:
    """Collect the facts routes and rules read from the call and the request body."""
    body = getattr(request, "body", None) or {}
    key = call.key
    user = body.get("user")
    return RequestFacts(
        model=model.name,
        requested_model=call.requested_model,
        ingress=call.ingress,
        key_id=key.id if key else None,
        key=key.prefix if key else "",
        org_id=key.org_id if key else None,
        org=table.org_slugs.get(key.org_id, "") if key else "",
        project_id=key.project_id if key else None,
        project=table.project_slugs.get(key.project_id, "")
        if key and key.project_id
        else "",
        user=user if isinstance(user, str) else "",
        stream=bool(getattr(request, "stream", False)),
        max_tokens=requested_max_tokens(body),
        headers=call.headers,
        metadata=request_metadata(body),
        tags=frozenset(call.tags),
        body=body,
    )


def _reachable_model(
    snapshot: Snapshot, name: str, key: KeyEntry | None
) -> ModelEntry | None:
    """Return the model named name unless it is on another organization's connection."""
    model = snapshot.find_model(name)
    if model is None or key is None or key_reaches(key, model):
        return model
    return None


def _describe(snapshot: Snapshot, name: str, key: KeyEntry | None) -> TargetInfo | None:
    model = _reachable_model(snapshot, name, key)
    if model is None:
        return None
    connection = snapshot.connections.get(model.connection_id)
    if connection is None:
        return None
    return TargetInfo(
        target_id=target_id(model),
        provider=connection.name,
        provider_type=connection.provider_type,
        region=connection.region,
        input_price=model.prices.input,
        output_price=model.prices.output,
    )


def _target(
    model: ModelEntry,
    snapshot: Snapshot,
    adapter: ProviderAdapter,
    candidate: Candidate,
) -> Target:
    return Target(
        model=model,
        connection=snapshot.connections[model.connection_id],
        adapter=adapter,
        retries=candidate.target.retries,
        timeout_seconds=candidate.target.timeout_seconds,
        path=candidate.path,
        arm=candidate.arm,
    )


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    """Drop repeats of a model: a target is tried once per request."""
    seen: set[str] = set()
    unique = []
    for candidate in candidates:
        if candidate.target.model not in seen:
            seen.add(candidate.target.model)
            unique.append(candidate)
    return unique


def _raise_empty(route: RouteEntry, selection: Selection, skipped: list) -> None:
    if skipped:
        waits = [wait for _, _, wait in skipped if wait > 0]
        raise NoHealthyTargetError(
            f'Every target of route "{route.name}" is unavailable: '
            + "; ".join(f"{name} ({reason})" for name, reason, _ in skipped)
            + ".",
            retry_after=min(waits) if waits else None,
        )
    reasons = "; ".join(f"{name}: {reason}" for name, reason in selection.excluded)
    raise NoAllowedTargetError(
        f'No target of route "{route.name}" may serve this request ({reasons}).'
    )
