"""The in-memory config snapshot the traffic plane serves from.

A snapshot is built from the control-plane database, then only read: requests look
up keys, models and provider connections here and never query the database.
"""

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeyEntry:
    """A virtual key as the traffic plane needs it."""

    id: int
    org_id: int
    project_id: int | None
    prefix: str
    allowed_models: frozenset[str]
    expires_at: float | None = None
    revoked: bool = False
    owner_id: int | None = None

    def is_usable(self, now: float | None = None) -> bool:
        if self.revoked:
            return False
        return self.expires_at is None or self.expires_at > (now or time.time())


@dataclass(frozen=True)
class ConnectionEntry:
    """A provider connection with its decrypted credential."""

    id: int
    name: str
    provider_type: str
    base_url: str
    credential: str = ""
    region: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # The owning organization's id; None for a shared platform connection.
    org_id: int | None = None


@dataclass(frozen=True)
class Prices:
    """Prices in nano-USD per million tokens (1 USD is 10**9 nano-USD)."""

    input: int = 0
    output: int = 0
    cached_input: int | None = None
    cache_write: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    """A public model name, the connection that serves it and its prices."""

    id: int
    name: str
    aliases: tuple[str, ...]
    kind: str
    connection_id: int
    upstream_model: str
    prices: Prices = Prices()
    # The organization that owns the model's connection; None when it is shared.
    org_id: int | None = None


@dataclass
class Snapshot:
    """One consistent version of the control-plane config."""

    version: int
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    connections: dict[int, ConnectionEntry] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    built_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.names: dict[str, ModelEntry] = {}
        for model in self.models.values():
            self.names[model.name] = model
            for alias in model.aliases:
                self.names.setdefault(alias, model)

    def find_model(self, name: str) -> ModelEntry | None:
        """Return the model whose public name or alias is name, matched exactly."""
        return self.names.get(name)

    def connection(self, model: ModelEntry) -> ConnectionEntry:
        return self.connections[model.connection_id]

    def extension(self, name: str, default: Any = None) -> Any:
        """Return the config another subsystem (quotas, routing, hooks) stored here."""
        return self.extensions.get(name, default)
