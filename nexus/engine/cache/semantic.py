"""The semantic layer: embed the prompt, search its scope, store new answers.

Each configured index gets one SemanticIndex with its embedder, backend and circuit
breaker. Embedding or index failures and time-outs count against the breaker. While it is
open, the semantic layer is skipped and requests go on to the upstream call.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

import numpy as np

from nexus.engine.cache.breaker import CircuitBreaker
from nexus.engine.cache.config import SemanticSettings
from nexus.engine.cache.embedders import Embedder, EmbeddingError, LocalEmbedder
from nexus.engine.cache.keys import SemanticQuery
from nexus.engine.cache.vectors.base import (
    IndexSpec,
    Match,
    VectorEntry,
    VectorIndex,
    VectorIndexError,
)

logger = logging.getLogger(__name__)

FAILURES = (EmbeddingError, VectorIndexError, TimeoutError, OSError)


@dataclass
class Lookup:
    """The result of one semantic lookup, with what a later store needs."""

    # "hit", "miss" or "skipped"
    outcome: str
    reason: str = ""
    match: Match | None = None
    vector: np.ndarray | None = None
    spec: IndexSpec | None = None


class SemanticIndex:
    """One named index: its embedder, its backend and its breaker."""

    def __init__(
        self, settings: SemanticSettings, embedder: Embedder, backend: VectorIndex
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.backend = backend
        self.breaker = CircuitBreaker(
            f"semantic:{settings.index}",
            threshold=settings.breaker_threshold,
            cool_down=settings.breaker_cool_down,
        )
        self.ensured: IndexSpec | None = None
        self.warming: asyncio.Task | None = None

    def configure(self, settings: SemanticSettings) -> None:
        """Take new thresholds, TTL and generation without a new embedder."""
        self.settings = settings
        self.breaker.threshold = max(1, settings.breaker_threshold)
        self.breaker.cool_down = settings.breaker_cool_down

    def ready(self) -> bool:
        """Return whether the embedder is loaded; start loading it if not."""
        if not isinstance(self.embedder, LocalEmbedder) or self.embedder.model:
            return True
        if self.warming is None or self.warming.done():
            self.warming = asyncio.ensure_future(self._warm())
        return False

    async def _warm(self) -> None:
        try:
            await self.embedder.ready()
        except EmbeddingError as exc:
            logger.error("semantic index %s: %s", self.settings.index, exc)
            self.breaker.failure()

    def spec(self) -> IndexSpec:
        return IndexSpec(
            name=self.settings.index,
            model=self.embedder.name,
            dimension=self.embedder.dimension,
            generation=self.settings.generation,
        )

    async def lookup(self, query: SemanticQuery, now: float) -> Lookup:
        """Embed the query text and return the nearest entry above the threshold."""
        if not self.breaker.allow():
            return Lookup("skipped", "circuit_open")
        if not self.ready():
            return Lookup("skipped", "warming")
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                vector = (await self.embedder.embed([query.text]))[0]
                spec = await self._ensure()
                match = await self.backend.search(
                    spec, query.scope, vector, self.settings.threshold, now
                )
        except FAILURES as exc:
            self.breaker.failure()
            logger.warning(
                "semantic lookup in %s failed: %s",
                self.settings.index,
                type(exc).__name__,
            )
            return Lookup("skipped", "error")
        self.breaker.success()
        return Lookup("hit" if match else "miss", match=match, vector=vector, spec=spec)

    async def _ensure(self) -> IndexSpec:
        spec = self.spec()
        if spec != self.ensured:
            await self.backend.ensure(spec)
            self.ensured = spec
        return spec

    async def store(self, spec: IndexSpec, entry: VectorEntry) -> None:
        """Add the entry; embedding and index failures are logged and counted."""
        try:
            async with asyncio.timeout(self.settings.timeout_seconds * 5):
                await self.backend.add(spec, entry)
        except FAILURES as exc:
            self.breaker.failure()
            logger.warning(
                "semantic store in %s failed: %s",
                self.settings.index,
                type(exc).__name__,
            )

    async def forget(self, entry_id: str) -> None:
        """Delete a quarantined entry; failures are logged."""
        try:
            await self.backend.delete(self._current(), entry_id)
        except FAILURES as exc:
            logger.warning("semantic delete failed: %s", type(exc).__name__)

    async def purge(self, org_id: int | None) -> None:
        """Delete the entries of an org (every entry when None) after an admin purge."""
        try:
            removed = await self.backend.purge(self._current(), org_id)
        except FAILURES as exc:
            logger.warning("semantic purge failed: %s", type(exc).__name__)
            return
        logger.info(
            "semantic index %s purged %s entries",
            self.settings.index,
            removed,
            extra={"tenant_id": org_id},
        )

    def _current(self) -> IndexSpec:
        return self.ensured or self.spec()


def entry_expiry(settings: SemanticSettings) -> float:
    return time.time() + settings.ttl_seconds
