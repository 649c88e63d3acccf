"""The interface every semantic-cache vector index implements."""

import re
from dataclasses import dataclass

import numpy as np

INDEX_NAME = re.compile(r"^[a-z0-9_]{1,40}$")


class VectorIndexError(Exception):
    """A vector index call failed (connection, missing extension or module)."""


@dataclass(frozen=True)
class IndexSpec:
    """One named index and what its vectors mean.

    `model` and `dimension` identify the embedding model; `generation` is bumped by
    the admin action that drops the index. When any of the three differs from what
    the backend recorded, ensure() drops the stored index and creates it anew.
    """

    name: str
    model: str
    dimension: int
    generation: int = 0

    def __post_init__(self) -> None:
        if not INDEX_NAME.match(self.name):
            raise ValueError(
                f"Index name {self.name!r} must be 1 to 40 of a-z, 0-9 and _."
            )


@dataclass(frozen=True)
class VectorEntry:
    """One cached answer with the embedding of the prompt it answered."""

    entry_id: str
    scope: str
    org_id: int
    vector: np.ndarray
    payload: bytes
    expires_at: float


@dataclass(frozen=True)
class Match:
    """The nearest entry in a scope and its cosine similarity."""

    entry_id: str
    similarity: float
    payload: bytes


class VectorIndex:
    """Nearest-neighbour search over unit vectors, partitioned by scope.

    Entries expire at `expires_at` (Unix seconds); expired entries are never
    returned and are removed eventually.
    """

    name = "vector"

    async def ensure(self, spec: IndexSpec) -> bool:
        """Create the index if missing or stale; return True if it was (re)created."""
        raise NotImplementedError

    async def search(
        self,
        spec: IndexSpec,
        scope: str,
        vector: np.ndarray,
        threshold: float,
        now: float,
    ) -> Match | None:
        """Return the nearest live entry in scope if its similarity >= threshold."""
        raise NotImplementedError

    async def add(self, spec: IndexSpec, entry: VectorEntry) -> None:
        raise NotImplementedError

    async def delete(self, spec: IndexSpec, entry_id: str) -> None:
        raise NotImplementedError

    async def purge(self, spec: IndexSpec, org_id: int | None) -> int:
        """Delete every entry of org_id (all entries when None); return how many."""
        raise NotImplementedError

    async def drop(self, spec: IndexSpec) -> None:
        """Delete the index and everything in it."""
        raise NotImplementedError

    async def count(self, spec: IndexSpec) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""
