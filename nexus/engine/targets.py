"""Where a request may go: the targets a router plans and how failures move on."""

from dataclasses import dataclass, field
from typing import Any

from nexus.engine.call import Call
from nexus.engine.providers.base import ProviderAdapter
from nexus.engine.snapshot import ConnectionEntry, ModelEntry


@dataclass(frozen=True)
class Target:
    """One model on one provider connection, with the codec that speaks to it."""

    model: ModelEntry
    connection: ConnectionEntry
    adapter: ProviderAdapter


@dataclass
class Plan:
    """Targets to try in order, and how often to retry each on retryable failures."""

    targets: list[Target]
    retries: int = 0
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 8.0
    # Statuses that move on to the next target although they are not retryable.
    failover_statuses: frozenset[int] = frozenset()
    route: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Router:
    """Plan the targets for a request; the default serves the resolved model only."""

    def plan(
        self,
        call: Call,
        request: Any,
        model: ModelEntry,
        adapters: dict[int, ProviderAdapter],
        connections: dict[int, ConnectionEntry],
    ) -> Plan:
        connection = connections[model.connection_id]
        return Plan(targets=[Target(model, connection, adapters[connection.id])])

    def record(
        self, target: Target, *, ok: bool, latency_ms: float, status: int
    ) -> None:
        """Learn from one attempt's outcome (health, latency); the default ignores it."""
