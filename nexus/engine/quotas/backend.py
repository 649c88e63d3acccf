"""Counter stores for quotas: one interface, a Redis and an in-process implementation.

Both keep the same model. A counter is a map of bucket id to amount; its usage is the
sum of the buckets at or after the window's oldest bucket. `reserve` checks every
counter of a request against its hard limit and, only when all fit, adds the
estimate to each and records the reservation in the organization's ledger, all in
one atomic step. `settle` takes the reservation out of the ledger and moves each
counter to the actual amount, and reports soft limits crossed for the first time in
the window. A reservation left unsettled (its gateway died mid-request) is released
when it falls due, by the next reservation of the same organization.

A counter that does not exist yet is first seeded with the usage the database
holds for it, so a restarted or emptied store neither loses nor doubles spend.
"""

import heapq
import itertools
from dataclasses import dataclass, field


class BackendUnavailableError(Exception):
    """The counter store cannot be reached."""


@dataclass(frozen=True)
class ReserveCounter:
    """One counter a reservation checks and charges."""

    key: str
    bucket: int
    oldest: int
    ttl: int
    amount: int
    # None means no hard limit.
    hard: int | None
    # Database usage as (bucket, amount) pairs, or None when the caller knows the
    # counter exists already.
    seed: tuple[tuple[int, int], ...] | None = None
    # The part of the amount the request needs for certain. When the amount does not
    # fit but more than the floor does, the counter reserves what is left instead.
    floor: int | None = None

    def fitted(self, used: int) -> int | None:
        """Return the amount to reserve on top of `used`, or None if nothing fits."""
        if self.hard is None or used + self.amount <= self.hard:
            return self.amount
        floor = self.amount if self.floor is None else self.floor
        if used + floor < self.hard:
            return self.hard - used
        return None

    def shortfall(self, used: int) -> int:
        """Return how much usage must leave the window before the request fits."""
        hard = self.hard or 0
        if self.floor is None or self.floor >= self.amount:
            return used + self.amount - hard
        return used + self.floor - hard + 1


@dataclass(frozen=True)
class ReserveOutcome:
    """The result of a reservation, with each counter's usage before it in `used`."""

    admitted: bool
    used: list[int]
    # Amount reserved per counter, when admitted.
    reserved: list[int] = field(default_factory=list)
    # Index of the first counter over its hard limit, when not admitted.
    rejected: int = -1
    # Oldest sliding bucket whose expiry makes room for the request, or -1.
    drain_bucket: int = -1


@dataclass(frozen=True)
class SettleCounter:
    """One counter a settlement moves from its reserved to its actual amount."""

    key: str
    reserved_bucket: int
    bucket: int
    oldest: int
    ttl: int
    reserved: int
    actual: int
    soft: int | None = None
    # Key that records the soft-limit crossing of one window instance.
    marker: str = ""
    marker_ttl: int = 0
    seed: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class SettleOutcome:
    """Whether the reservation was still open, and soft-limit crossings by counter."""

    found: bool
    # Per counter: its usage when it crossed its soft limit just now, else None.
    crossed: list[int | None]


class QuotaBackend:
    """The store of quota counters; implementations must make each call atomic."""

    name = "backend"
    # False while the store is known to be down; callers then skip it without I/O.
    available = True

    async def reserve(
        self,
        org_id: int,
        reservation_id: str,
        counters: list[ReserveCounter],
        now: float,
        due: float,
    ) -> ReserveOutcome:
        raise NotImplementedError

    async def settle(
        self,
        org_id: int,
        reservation_id: str,
        counters: list[SettleCounter],
        now: float,
    ) -> SettleOutcome:
        raise NotImplementedError

    async def usage(self, key: str, oldest: int) -> int:
        """Return a counter's current usage."""
        raise NotImplementedError

    async def existing(self, keys: list[str]) -> set[str]:
        """Return which of the counters exist in the store."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


def settle_delta(counter: SettleCounter, found: bool) -> tuple[int, int]:
    """Return (bucket, amount) to add for a settlement, amount 0 for nothing.

    With the reservation still open, the difference goes to the reservation's bucket.
    When that bucket has left the window, only an increase goes to the current
    bucket. Without it (released when due, or lost with the store), the
    whole actual amount goes to the current bucket.
    """
    if not found:
        return counter.bucket, counter.actual
    delta = counter.actual - counter.reserved
    if counter.reserved_bucket >= counter.oldest:
        return counter.reserved_bucket, delta
    return counter.bucket, max(delta, 0)


@dataclass
class _Counter:
    buckets: dict[int, int]
    expires_at: float


class MemoryBackend(QuotaBackend):
    """Counters in this process's memory, for a single gateway process.

    No method awaits, so on one event loop each call is atomic. Two processes do not
    share these counters; several replicas need Redis.
    """

    name = "memory"

    def __init__(self) -> None:
        self.counters: dict[str, _Counter] = {}
        self.ledger: dict[str, list[tuple[str, int, int]]] = {}
        self.due: list[tuple[float, int, str]] = []
        self.markers: dict[str, float] = {}
        self._sequence = itertools.count()
        self._writes = 0

    async def reserve(
        self,
        org_id: int,
        reservation_id: str,
        counters: list[ReserveCounter],
        now: float,
        due: float,
    ) -> ReserveOutcome:
        self._release_due(now)
        used: list[int] = []
        for counter in counters:
            self._seed(counter.key, counter.seed, counter.oldest, counter.ttl, now)
            used.append(self._total(counter.key, counter.oldest))
        amounts: list[int] = []
        for index, counter in enumerate(counters):
            amount = counter.fitted(used[index])
            if amount is None:
                drain = drain_bucket(
                    self._buckets(counter.key, counter.oldest),
                    counter.shortfall(used[index]),
                )
                return ReserveOutcome(False, used, rejected=index, drain_bucket=drain)
            amounts.append(amount)
        entries = []
        for counter, amount in zip(counters, amounts, strict=True):
            entry = self._entry(counter.key, counter.ttl, now)
            if amount:
                entry.buckets[counter.bucket] = (
                    entry.buckets.get(counter.bucket, 0) + amount
                )
                entries.append((counter.key, counter.bucket, amount))
        if entries:
            self.ledger[reservation_id] = entries
            heapq.heappush(self.due, (due, next(self._sequence), reservation_id))
        self._collect_garbage(now)
        return ReserveOutcome(True, used, reserved=amounts)

    async def settle(
        self,
        org_id: int,
        reservation_id: str,
        counters: list[SettleCounter],
        now: float,
    ) -> SettleOutcome:
        found = self.ledger.pop(reservation_id, None) is not None
        crossed: list[int | None] = []
        for counter in counters:
            self._seed(counter.key, counter.seed, counter.oldest, counter.ttl, now)
            bucket, amount = settle_delta(counter, found)
            entry = self._entry(counter.key, counter.ttl, now)
            if amount:
                entry.buckets[bucket] = entry.buckets.get(bucket, 0) + amount
            crossed.append(None)
            if counter.soft is None:
                continue
            total = self._total(counter.key, counter.oldest)
            if total >= counter.soft and self.markers.get(counter.marker, 0) <= now:
                self.markers[counter.marker] = now + counter.marker_ttl
                crossed[-1] = total
        return SettleOutcome(found, crossed)

    async def usage(self, key: str, oldest: int) -> int:
        return self._total(key, oldest)

    async def existing(self, keys: list[str]) -> set[str]:
        return {key for key in keys if key in self.counters}

    def _entry(self, key: str, ttl: int, now: float) -> _Counter:
        entry = self.counters.get(key)
        if entry is None:
            entry = self.counters[key] = _Counter({}, 0.0)
        entry.expires_at = now + ttl
        return entry

    def _seed(
        self,
        key: str,
        seed: tuple[tuple[int, int], ...] | None,
        oldest: int,
        ttl: int,
        now: float,
    ) -> None:
        entry = self.counters.get(key)
        if entry is not None and entry.expires_at <= now:
            del self.counters[key]
            entry = None
        if entry is not None or not seed:
            return
        buckets = {bucket: amount for bucket, amount in seed if bucket >= oldest}
        if buckets:
            self.counters[key] = _Counter(buckets, now + ttl)

    def _buckets(self, key: str, oldest: int) -> list[tuple[int, int]]:
        entry = self.counters.get(key)
        if entry is None:
            return []
        for bucket in [bucket for bucket in entry.buckets if bucket < oldest]:
            del entry.buckets[bucket]
        return sorted(entry.buckets.items())

    def _total(self, key: str, oldest: int) -> int:
        return sum(amount for _, amount in self._buckets(key, oldest))

    def _release_due(self, now: float) -> None:
        while self.due and self.due[0][0] <= now:
            _, _, reservation_id = heapq.heappop(self.due)
            for key, bucket, amount in self.ledger.pop(reservation_id, ()):
                entry = self.counters.get(key)
                if entry is not None and bucket in entry.buckets:
                    entry.buckets[bucket] -= amount

    def _collect_garbage(self, now: float) -> None:
        self._writes += 1
        if self._writes % 10_000:
            return
        for key in [k for k, entry in self.counters.items() if entry.expires_at <= now]:
            del self.counters[key]
        for key in [k for k, expires in self.markers.items() if expires <= now]:
            del self.markers[key]


def drain_bucket(buckets: list[tuple[int, int]], needed: int) -> int:
    """Return the oldest bucket whose expiry frees `needed`, or -1 if none does."""
    freed = 0
    for bucket, amount in buckets:
        freed += amount
        if freed >= needed:
            return bucket
    return -1
