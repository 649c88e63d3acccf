"""Quota rules as the traffic plane uses them, and which counters a request hits.

A rule limits one unit (tokens, USD or requests) over one window. Its axis says how
the rule's usage is split into counters: an "organization" rule keeps one counter
for all matching traffic, a "key" rule one per virtual key, a "key+model" rule one
per key and model. Filters (project, key, provider connection, model) narrow the
traffic a rule applies to. Limits are integers in the unit's base: tokens, requests
or nano-USD (10**-9 USD).
"""

from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from urllib.parse import quote, unquote

from nexus.engine.quotas.windows import Slot, Window

DIMENSIONS = ("project", "key", "provider", "model")

AXES: dict[str, tuple[str, ...]] = {
    "organization": (),
    "project": ("project",),
    "key": ("key",),
    "provider": ("provider",),
    "model": ("model",),
    "project+model": ("project", "model"),
    "project+provider": ("project", "provider"),
    "key+model": ("key", "model"),
    "key+provider": ("key", "provider"),
    "provider+model": ("provider", "model"),
}

# Counter keys start with the organization in braces: Redis Cluster hashes only the
# braced part, so every counter, ledger and marker of one organization lives in one
# slot and a single Lua script may touch them all.
KEY_PREFIX = "nq"


class Unit(StrEnum):
    TOKENS = "tokens"
    USD = "usd"
    REQUESTS = "requests"


@dataclass(frozen=True)
class Subject:
    """The organization, key, project, connection and model of one request."""

    org_id: int
    key_id: int
    project_id: int | None
    connection_id: int | None
    model: str

    def value(self, dimension: str) -> int | str | None:
        if dimension == "project":
            return self.project_id
        if dimension == "key":
            return self.key_id
        if dimension == "provider":
            return self.connection_id
        return self.model or None


@dataclass(frozen=True)
class QuotaRule:
    """One enabled quota: what it counts, over which window, and its limits."""

    id: int
    uid: str
    name: str
    org_id: int
    axis: str
    unit: Unit
    window: Window
    hard_limit: int | None = None
    soft_limit: int | None = None
    project_id: int | None = None
    key_id: int | None = None
    connection_id: int | None = None
    model: str = ""

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise ValueError(f'Unknown quota axis "{self.axis}".')

    @property
    def dimensions(self) -> tuple[str, ...]:
        return AXES[self.axis]

    def matches(self, subject: Subject) -> bool:
        """Return whether the rule counts this request."""
        if subject.org_id != self.org_id:
            return False
        if self.project_id is not None and subject.project_id != self.project_id:
            return False
        if self.key_id is not None and subject.key_id != self.key_id:
            return False
        if (
            self.connection_id is not None
            and subject.connection_id != self.connection_id
        ):
            return False
        if self.model and subject.model != self.model:
            return False
        # A project axis needs a project: keys outside projects are not counted.
        return all(subject.value(name) is not None for name in self.dimensions)

    def dimension_values(self, subject: Subject) -> dict[str, str]:
        return {name: str(subject.value(name)) for name in self.dimensions}

    def counter_base(self, values: dict[str, str]) -> str:
        """Return the counter key without its slot suffix."""
        prefix = (
            f"{KEY_PREFIX}:{{o{self.org_id}}}:{self.uid}:"
            f"{self.unit.value}.{self.window.code}"
        )
        pairs = tuple((name, values[name]) for name in self.dimensions)
        return f"{prefix}:{_dimension_text(pairs)}"

    def counter_key(self, values: dict[str, str], slot: Slot) -> str:
        return f"{self.counter_base(values)}:{slot.suffix}"


@lru_cache(maxsize=65_536)
def _dimension_text(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return "all"
    return ",".join(f"{name}={quote(value, safe='')}" for name, value in pairs)


def parse_counter_key(key: str) -> dict[str, str]:
    """Return the dimension values encoded in a counter key."""
    dims = key.split(":")[4]
    if dims == "all":
        return {}
    return dict(
        (name, unquote(value))
        for name, value in (item.split("=", 1) for item in dims.split(","))
    )


def ledger_keys(org_id: int) -> tuple[str, str]:
    """Return the keys of an organization's open reservations and their due times."""
    return (
        f"{KEY_PREFIX}:{{o{org_id}}}:ledger",
        f"{KEY_PREFIX}:{{o{org_id}}}:ledger:due",
    )


@dataclass(frozen=True)
class OrgPolicy:
    """An organization's quota settings."""

    # Admit requests without counting while the counter store is down (else 503).
    fail_open: bool = True
    # Output tokens reserved when a request sets no max_tokens.
    default_output_tokens: int = 1024


@dataclass(frozen=True)
class QuotaConfig:
    """The quota part of the config snapshot."""

    rules: dict[int, tuple[QuotaRule, ...]] = field(default_factory=dict)
    policies: dict[int, OrgPolicy] = field(default_factory=dict)
    default_policy: OrgPolicy = OrgPolicy()
    # Usage the database already holds per counter key, as (bucket, amount) pairs.
    # A counter is seeded with it only when the store has no such counter.
    seeds: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def policy(self, org_id: int) -> OrgPolicy:
        return self.policies.get(org_id, self.default_policy)

    def matching(self, subject: Subject) -> list[QuotaRule]:
        """Return the rules that count a request, in rule id order."""
        return [
            rule for rule in self.rules.get(subject.org_id, ()) if rule.matches(subject)
        ]
