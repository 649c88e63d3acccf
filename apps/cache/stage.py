"""The "cache" pipeline stage: binds the engine's cache layer to this gateway.

Exact entries and flight locks live in Redis when REDIS_URL is set and in process
memory otherwise. Semantic indexes use the backend each SemanticIndex row names;
their embedder is the bundled local model or an embeddings model this gateway
serves, called through its own provider codec.
"""

import logging
from typing import Any

import aiohttp
from django.conf import settings

from apps.gateway.runtime import GatewayRuntime
from nexus.engine.cache.config import SemanticSettings
from nexus.engine.cache.embedders import (
    Embedder,
    EmbeddingError,
    GatewayEmbedder,
    LocalEmbedder,
)
from nexus.engine.cache.flight import FlightTable, RedisFlightRelay
from nexus.engine.cache.layer import CacheLayer
from nexus.engine.cache.semantic import SemanticIndex
from nexus.engine.cache.store import MemoryExactStore, RedisExactStore
from nexus.engine.cache.vectors.base import VectorIndex, VectorIndexError
from nexus.engine.cache.vectors.numpy_index import NumpyIndex
from nexus.engine.call import Call
from nexus.engine.canonical import ChatResult, EmbeddingsRequest
from nexus.engine.errors import NexusError
from nexus.engine.stages import ChunkSource, ResponseFilter, Stage

logger = logging.getLogger(__name__)


class CacheStage(Stage):
    """Exact cache, in-flight coalescing and semantic cache for chat requests."""

    name = "cache"

    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime
        if settings.REDIS_URL:
            store = RedisExactStore(settings.REDIS_URL)
            flights = FlightTable(RedisFlightRelay(settings.REDIS_URL))
        else:
            store = MemoryExactStore(settings.NEXUS_CACHE_MEMORY_MAX_ENTRIES)
            flights = FlightTable()
        self.layer = CacheLayer(
            store=store,
            flights=flights,
            config=lambda: runtime.snapshot.extension("cache"),
            index_factory=self._index,
            follower_wait=settings.NEXUS_UPSTREAM_TIMEOUT,
        )
        self.backends: dict[tuple[str, str], VectorIndex] = {}
        self.local_embedder: LocalEmbedder | None = None

    async def on_request(
        self, call: Call, request: Any
    ) -> ChatResult | ChunkSource | None:
        return await self.layer.on_request(call, request)

    def response_filter(self, call: Call, request: Any) -> ResponseFilter | None:
        return self.layer.response_filter(call, request)

    async def on_complete(self, call: Call, request: Any) -> None:
        await self.layer.on_complete(call, request)

    async def close(self) -> None:
        await self.layer.close()

    def _index(self, semantic: SemanticSettings) -> SemanticIndex:
        return SemanticIndex(
            semantic, self._embedder(semantic), self._backend(semantic)
        )

    def _embedder(self, semantic: SemanticSettings) -> Embedder:
        if semantic.embedding_model == "local":
            if self.local_embedder is None:
                self.local_embedder = LocalEmbedder()
            return self.local_embedder
        name, dimensions = semantic.embedding_model, semantic.dimensions

        async def call(texts: list[str]) -> list[list[float]]:
            return await self._embed_via_gateway(name, dimensions, texts)

        return GatewayEmbedder(name, call, dimensions)

    def _backend(self, semantic: SemanticSettings) -> VectorIndex:
        kind = semantic.backend
        if kind == "pgvector":
            url = settings.NEXUS_CACHE_PGVECTOR_URL or settings.DATABASE_URL
        elif kind == "redis":
            url = settings.NEXUS_CACHE_REDIS_SEARCH_URL or settings.REDIS_URL
        else:
            url = ""
        if (kind, url) not in self.backends:
            self.backends[kind, url] = _new_backend(kind, url)
        return self.backends[kind, url]

    async def _embed_via_gateway(
        self, name: str, dimensions: int, texts: list[str]
    ) -> list[list[float]]:
        """Embed texts with a gateway embeddings model through its provider codec."""
        snapshot = self.runtime.snapshot
        model = snapshot.find_model(name)
        if model is None or model.kind != "embeddings":
            raise EmbeddingError(f"Embeddings model {name!r} is not configured.")
        adapter = self.runtime.adapters.get(model.connection_id)
        if adapter is None:
            raise EmbeddingError(f"The connection of model {name!r} is unavailable.")
        body: dict[str, Any] = {"model": name, "input": texts}
        if dimensions:
            body["dimensions"] = dimensions
        request = EmbeddingsRequest(body=body, model=name, inputs=texts)
        try:
            outgoing = adapter.build_embeddings_request(request, model.upstream_model)
            await adapter.authorize(outgoing)
            response = await adapter.send(
                self.runtime.client, outgoing, timeout=settings.NEXUS_UPSTREAM_TIMEOUT
            )
            async with response:
                raw = await response.read()
            if response.status >= 400:
                raise adapter.parse_error(response.status, raw)
            return adapter.parse_embeddings_response(raw, request).vectors
        except (NexusError, OSError, TimeoutError, aiohttp.ClientError) as exc:
            raise EmbeddingError(f"Embedding with {name!r} failed: {exc}") from exc


def _new_backend(kind: str, url: str) -> VectorIndex:
    if kind == "pgvector":
        from nexus.engine.cache.vectors.pgvector import PgVectorIndex

        if not url.startswith(("postgres://", "postgresql://")):
            return _Unavailable("pgvector needs NEXUS_CACHE_PGVECTOR_URL")
        return PgVectorIndex(url)
    if kind == "redis":
        from nexus.engine.cache.vectors.redis_search import RedisSearchIndex

        if not url:
            return _Unavailable("Redis vector search needs REDIS_URL")
        return RedisSearchIndex(url)
    return NumpyIndex(settings.NEXUS_CACHE_MEMORY_MAX_ENTRIES)


class _Unavailable(VectorIndex):
    """A backend whose settings are missing; every call fails into the breaker."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def ensure(self, spec) -> bool:
        raise VectorIndexError(self.reason)

    async def search(self, spec, scope, vector, threshold, now):
        raise VectorIndexError(self.reason)

    async def add(self, spec, entry) -> None:
        raise VectorIndexError(self.reason)

    async def delete(self, spec, entry_id) -> None:
        raise VectorIndexError(self.reason)

    async def purge(self, spec, org_id) -> int:
        raise VectorIndexError(self.reason)

    async def drop(self, spec) -> None:
        raise VectorIndexError(self.reason)

    async def count(self, spec) -> int:
        return 0
