"""The Redis or Valkey vector index, using FT.CREATE and FT.SEARCH (HNSW, cosine).

Entries are hashes under `nexus:semantic:<name>:<generation>:<entry id>` with a
PEXPIREAT at their expiry, so the server removes them. The hash
`nexus:semantic-meta:<name>` records the model, dimension and generation.
Needs a server with vector search: Redis Stack or Redis 8 (RediSearch 2.4 or newer),
or Valkey with valkey-search.
"""

import logging

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from nexus.engine.cache.vectors.base import (
    IndexSpec,
    Match,
    VectorEntry,
    VectorIndex,
    VectorIndexError,
)

logger = logging.getLogger(__name__)

META_PREFIX = "nexus:semantic-meta:"
PAGE = 1000


class RedisSearchIndex(VectorIndex):
    """HNSW search in a Redis-protocol server with the search module."""

    name = "redis"

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    @staticmethod
    def index_name(spec: IndexSpec) -> str:
        return f"nexus:semantic:{spec.name}"

    @staticmethod
    def prefix(spec: IndexSpec) -> str:
        return f"nexus:semantic:{spec.name}:{spec.generation}:"

    async def ensure(self, spec: IndexSpec) -> bool:
        meta_key = META_PREFIX + spec.name
        try:
            meta = await self.client.hgetall(meta_key)
            recorded = (
                meta.get(b"model", b"").decode(),
                int(meta.get(b"dimension", 0)),
                int(meta.get(b"generation", -1)),
            )
            expected = (spec.model, spec.dimension, spec.generation)
            if recorded == expected and await self._exists(spec):
                return False
            if recorded[2] > spec.generation:
                return False
            await self._drop_index(spec)
            await self.client.execute_command(
                "FT.CREATE",
                self.index_name(spec),
                "ON",
                "HASH",
                "PREFIX",
                "1",
                self.prefix(spec),
                "SCHEMA",
                "scope",
                "TAG",
                "org",
                "TAG",
                "expires",
                "NUMERIC",
                "embedding",
                "VECTOR",
                "HNSW",
                "6",
                "TYPE",
                "FLOAT32",
                "DIM",
                str(spec.dimension),
                "DISTANCE_METRIC",
                "COSINE",
            )
            await self.client.hset(
                meta_key,
                mapping={
                    "model": spec.model,
                    "dimension": spec.dimension,
                    "generation": spec.generation,
                },
            )
        except (RedisError, OSError) as exc:
            raise VectorIndexError(f"Redis vector index setup failed: {exc}") from exc
        logger.info("semantic index %s created in Redis for %s", spec.name, spec.model)
        return True

    async def _exists(self, spec: IndexSpec) -> bool:
        try:
            await self.client.execute_command("FT.INFO", self.index_name(spec))
        except ResponseError:
            return False
        return True

    async def _drop_index(self, spec: IndexSpec) -> None:
        try:
            # DD deletes the indexed hashes too.
            await self.client.execute_command(
                "FT.DROPINDEX", self.index_name(spec), "DD"
            )
        except ResponseError:
            pass

    async def search(self, spec, scope, vector, threshold, now) -> Match | None:
        blob = np.asarray(vector, dtype=np.float32).reshape(-1).tobytes()
        query = f"(@scope:{{{scope}}} @expires:[({now} +inf])=>[KNN 1 @embedding $vec AS dist]"
        try:
            reply = await self.client.execute_command(
                "FT.SEARCH",
                self.index_name(spec),
                query,
                "PARAMS",
                "2",
                "vec",
                blob,
                "SORTBY",
                "dist",
                "RETURN",
                "2",
                "dist",
                "payload",
                "DIALECT",
                "2",
            )
        except (RedisError, OSError) as exc:
            raise VectorIndexError(f"Redis vector search failed: {exc}") from exc
        if not reply or reply[0] == 0:
            return None
        key, fields = reply[1], reply[2]
        values = dict(zip(fields[::2], fields[1::2], strict=False))
        similarity = 1.0 - float(values[b"dist"])
        if similarity < threshold:
            return None
        entry_id = key.decode().rsplit(":", 1)[-1]
        return Match(entry_id, similarity, bytes(values[b"payload"]))

    def _key(self, spec: IndexSpec, entry_id: str) -> str:
        return self.prefix(spec) + entry_id

    async def add(self, spec: IndexSpec, entry: VectorEntry) -> None:
        key = self._key(spec, entry.entry_id)
        blob = np.asarray(entry.vector, dtype=np.float32).reshape(-1).tobytes()
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(
                key,
                mapping={
                    "scope": entry.scope,
                    "org": str(entry.org_id),
                    "expires": entry.expires_at,
                    "embedding": blob,
                    "payload": entry.payload,
                },
            )
            pipe.pexpireat(key, int(entry.expires_at * 1000))
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise VectorIndexError(f"Redis vector add failed: {exc}") from exc

    async def delete(self, spec: IndexSpec, entry_id: str) -> None:
        try:
            await self.client.delete(self._key(spec, entry_id))
        except (RedisError, OSError) as exc:
            raise VectorIndexError(f"Redis vector delete failed: {exc}") from exc

    async def purge(self, spec: IndexSpec, org_id: int | None) -> int:
        query = "*" if org_id is None else f"@org:{{{org_id}}}"
        removed = 0
        try:
            while True:
                reply = await self.client.execute_command(
                    "FT.SEARCH",
                    self.index_name(spec),
                    query,
                    "NOCONTENT",
                    "LIMIT",
                    "0",
                    str(PAGE),
                    "DIALECT",
                    "2",
                )
                keys = reply[1:] if reply else []
                if not keys:
                    return removed
                removed += await self.client.delete(*keys)
        except ResponseError:
            return removed
        except (RedisError, OSError) as exc:
            raise VectorIndexError(f"Redis vector purge failed: {exc}") from exc

    async def drop(self, spec: IndexSpec) -> None:
        try:
            await self._drop_index(spec)
            await self.client.delete(META_PREFIX + spec.name)
        except (RedisError, OSError) as exc:
            raise VectorIndexError(f"Redis vector drop failed: {exc}") from exc

    async def count(self, spec: IndexSpec) -> int:
        try:
            info = await self.client.execute_command("FT.INFO", self.index_name(spec))
        except ResponseError:
            return 0
        values = dict(zip(info[::2], info[1::2], strict=False))
        return int(values.get(b"num_docs", values.get("num_docs", 0)))

    async def close(self) -> None:
        await self.client.aclose()
