"""Kill switches and emergency passthrough flags, evaluated per request.

A kill switch (global, per organization or per key) stops traffic with a 503 in
the caller's format. A passthrough flag (global, per provider connection or per
organization) skips hooks, the cache or request normalisation until it expires;
the expiry is checked here on every request, so a flag stops applying on time even
before the control plane marks it expired.
"""

import time
from dataclasses import dataclass, field

from nexus.engine.errors import ServiceUnavailableError

BYPASS_NAMES = ("hooks", "cache", "normalize")
MAX_PASSTHROUGH_SECONDS = 8 * 3600


class KillSwitchError(ServiceUnavailableError):
    """Traffic is stopped by a kill switch."""

    code = "kill_switch"


@dataclass(frozen=True)
class KillSwitchEntry:
    """An active kill switch; scope_id is an organization or key id, None for global."""

    id: int
    scope: str
    scope_id: int | None = None


@dataclass(frozen=True)
class PassthroughEntry:
    """An emergency passthrough flag and the bypasses it grants until expires_at."""

    id: int
    scope: str
    bypass: frozenset[str]
    expires_at: float
    scope_id: int | None = None
    starts_at: float = 0.0

    def applies(
        self, org_id: int | None, connection_id: int | None, now: float
    ) -> bool:
        if not self.starts_at <= now < self.expires_at:
            return False
        if self.scope == "global":
            return True
        if self.scope == "org":
            return org_id is not None and org_id == self.scope_id
        return connection_id is not None and connection_id == self.scope_id


@dataclass(frozen=True)
class ControlsConfig:
    """The kill switches and passthrough flags of one snapshot."""

    kill_switches: tuple[KillSwitchEntry, ...] = ()
    passthrough: tuple[PassthroughEntry, ...] = ()
    # Organizations whose request and response bodies are captured for audit.
    capture_orgs: frozenset[int] = frozenset()
    capture_all: bool = False
    # SIEM destinations as (destination id, organization id or None for all).
    forward: tuple[tuple[int, int | None], ...] = ()
    by_scope: dict[tuple[str, int | None], KillSwitchEntry] = field(
        default_factory=dict, compare=False
    )

    def destinations(self, org_id: int | None) -> list[int]:
        """Return the SIEM destinations that receive an organization's events."""
        return [
            dest for dest, scope in self.forward if scope is None or scope == org_id
        ]

    def __post_init__(self) -> None:
        for entry in self.kill_switches:
            self.by_scope[(entry.scope, entry.scope_id)] = entry


def check_kill_switches(
    config: ControlsConfig, org_id: int | None, key_id: int | None
) -> None:
    """Raise KillSwitchError when a global, organization or key switch is on."""
    for scope, scope_id in (("global", None), ("org", org_id), ("key", key_id)):
        if scope != "global" and scope_id is None:
            continue
        entry = config.by_scope.get((scope, scope_id))
        if entry is not None:
            where = {
                "global": "for all traffic",
                "org": "for this organization",
                "key": "for this key",
            }
            raise KillSwitchError(
                f"Traffic is stopped by a kill switch {where[scope]}; try again later."
            )


def active_bypasses(
    config: ControlsConfig,
    org_id: int | None,
    connection_id: int | None,
    now: float | None = None,
) -> tuple[set[str], list[int]]:
    """Return the bypass names in force for a request and the ids of the flags granting them."""
    moment = time.time() if now is None else now
    names: set[str] = set()
    flags: list[int] = []
    for entry in config.passthrough:
        if entry.applies(org_id, connection_id, moment):
            names |= entry.bypass
            flags.append(entry.id)
    return names, flags
