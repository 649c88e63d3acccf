"""The embedded vector index: numpy arrays in this process.

Each scope keeps its own matrix, so a search is one matrix-vector product over that
scope's entries (brute force, exact). The DESIGN note measured about 0.6 ms for
10,000 x 384 vectors.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from nexus.engine.cache.vectors.base import IndexSpec, Match, VectorEntry, VectorIndex

logger = logging.getLogger(__name__)


@dataclass
class _Bucket:
    """The entries of one scope."""

    dimension: int
    vectors: np.ndarray = field(init=False)
    ids: list[str] = field(default_factory=list)
    orgs: list[int] = field(default_factory=list)
    expires: list[float] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vectors = np.zeros((0, self.dimension), dtype=np.float32)

    def remove(self, positions: list[int]) -> None:
        drop = set(positions)
        keep = [i for i in range(len(self.ids)) if i not in drop]
        self.vectors = self.vectors[keep]
        self.ids = [self.ids[i] for i in keep]
        self.orgs = [self.orgs[i] for i in keep]
        self.expires = [self.expires[i] for i in keep]
        self.payloads = [self.payloads[i] for i in keep]


@dataclass
class _Index:
    spec: IndexSpec
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    # entry id -> scope, for delete and replace
    where: dict[str, str] = field(default_factory=dict)


class NumpyIndex(VectorIndex):
    """Exact cosine search in process memory, bounded to max_entries per index."""

    name = "numpy"

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self.indexes: dict[str, _Index] = {}

    async def ensure(self, spec: IndexSpec) -> bool:
        current = self.indexes.get(spec.name)
        if current is not None and current.spec == spec:
            return False
        if current is not None:
            logger.info("semantic index %s rebuilt for %s", spec.name, spec.model)
        self.indexes[spec.name] = _Index(spec)
        return True

    def _index(self, spec: IndexSpec) -> _Index:
        index = self.indexes.get(spec.name)
        if index is None or index.spec != spec:
            raise LookupError(
                f"Semantic index {spec.name} is not ensured for this spec."
            )
        return index

    async def search(self, spec, scope, vector, threshold, now) -> Match | None:
        bucket = self._index(spec).buckets.get(scope)
        if bucket is None or not bucket.ids:
            return None
        scores = bucket.vectors @ np.asarray(vector, dtype=np.float32).reshape(-1)
        scores[np.asarray(bucket.expires) <= now] = -2.0
        best = int(np.argmax(scores))
        similarity = float(scores[best])
        if similarity < threshold:
            return None
        return Match(bucket.ids[best], similarity, bucket.payloads[best])

    async def add(self, spec: IndexSpec, entry: VectorEntry) -> None:
        index = self._index(spec)
        await self.delete(spec, entry.entry_id)
        if len(index.where) >= self.max_entries:
            self._evict(index)
        bucket = index.buckets.get(entry.scope)
        if bucket is None:
            bucket = index.buckets[entry.scope] = _Bucket(spec.dimension)
        row = np.asarray(entry.vector, dtype=np.float32).reshape(1, -1)
        bucket.vectors = np.vstack([bucket.vectors, row])
        bucket.ids.append(entry.entry_id)
        bucket.orgs.append(entry.org_id)
        bucket.expires.append(entry.expires_at)
        bucket.payloads.append(entry.payload)
        index.where[entry.entry_id] = entry.scope

    def _evict(self, index: _Index) -> None:
        """Drop expired entries, then the oldest-expiring ones, to make room."""
        now = time.time()
        for scope, bucket in list(index.buckets.items()):
            expired = [i for i, at in enumerate(bucket.expires) if at <= now]
            self._remove(index, scope, expired)
        while len(index.where) >= self.max_entries:
            scope, bucket = min(
                ((s, b) for s, b in index.buckets.items() if b.ids),
                key=lambda item: min(item[1].expires),
            )
            self._remove(index, scope, [int(np.argmin(bucket.expires))])

    def _remove(self, index: _Index, scope: str, positions: list[int]) -> None:
        if not positions:
            return
        bucket = index.buckets[scope]
        for position in positions:
            index.where.pop(bucket.ids[position], None)
        bucket.remove(positions)
        if not bucket.ids:
            del index.buckets[scope]

    async def delete(self, spec: IndexSpec, entry_id: str) -> None:
        index = self.indexes.get(spec.name)
        if index is None:
            return
        scope = index.where.get(entry_id)
        if scope is not None:
            bucket = index.buckets[scope]
            self._remove(index, scope, [bucket.ids.index(entry_id)])

    async def purge(self, spec: IndexSpec, org_id: int | None) -> int:
        index = self.indexes.get(spec.name)
        if index is None:
            return 0
        removed = 0
        for scope, bucket in list(index.buckets.items()):
            positions = [
                i
                for i, org in enumerate(bucket.orgs)
                if org_id is None or org == org_id
            ]
            removed += len(positions)
            self._remove(index, scope, positions)
        return removed

    async def drop(self, spec: IndexSpec) -> None:
        self.indexes.pop(spec.name, None)

    async def count(self, spec: IndexSpec) -> int:
        index = self.indexes.get(spec.name)
        return 0 if index is None else len(index.where)
