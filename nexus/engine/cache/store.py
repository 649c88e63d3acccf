"""Exact-cache stores: Redis when configured, process memory otherwise."""

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

EXACT_PREFIX = "nexus:cache:exact:"


class ExactStore:
    """Bytes by key with a time to live; backends raise on I/O failure."""

    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


class MemoryExactStore(ExactStore):
    """A bounded LRU map in this process; the embedded default."""

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.size = 0
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self.clock():
            self._remove(key)
            return None
        self.entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._remove(key)
        self.entries[key] = (self.clock() + ttl_seconds, value)
        self.size += len(value)
        while self.entries and (
            len(self.entries) > self.max_entries or self.size > self.max_bytes
        ):
            oldest = next(iter(self.entries))
            self._remove(oldest)

    async def delete(self, key: str) -> None:
        self._remove(key)

    def _remove(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[1])


class RedisExactStore(ExactStore):
    """Entries as Redis strings under nexus:cache:exact:<key> with PX expiry."""

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    async def get(self, key: str) -> bytes | None:
        return await self.client.get(EXACT_PREFIX + key)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self.client.set(
            EXACT_PREFIX + key, value, px=max(1, int(ttl_seconds * 1000))
        )

    async def delete(self, key: str) -> None:
        await self.client.delete(EXACT_PREFIX + key)

    async def close(self) -> None:
        await self.client.aclose()
