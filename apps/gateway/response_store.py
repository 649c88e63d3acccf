"""Stored Responses API responses, for `previous_response_id` and `/v1/responses/{id}`.

A completed (or incomplete) response is stored under its org and id with the
Response object, the input items the model saw and the output it produced, unless
the request set `store: false`. Records live in Redis when REDIS_URL is set and in
process memory otherwise (the embedded default, one process), and expire after
NEXUS_RESPONSES_TTL_SECONDS (one day by default; OpenAI keeps responses for 30
days). The traffic path never queries the database for them.
"""

import logging
import time
from collections import OrderedDict
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.conf import settings

from apps.gateway.runtime import GatewayRuntime

logger = logging.getLogger(__name__)

# Records over this size are not stored, so one long conversation cannot fill Redis.
MAX_RECORD_BYTES = 8 * 1024 * 1024
# Records kept by the in-process store before the oldest are dropped.
MEMORY_CAPACITY = 10_000
KEY_PREFIX = "nexus:responses"


def ttl_seconds() -> int:
    """Return how long stored responses stay available, in seconds."""
    return settings.NEXUS_RESPONSES_TTL_SECONDS


def record_key(org_id: int, response_id: str) -> str:
    """Return the cache key of one org's response; ids never collide across orgs."""
    return f"{KEY_PREFIX}:{org_id}:{response_id}"


class ResponseStore:
    """Save and load response records of one gateway runtime."""

    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime

    async def load(self, org_id: int, response_id: str) -> dict[str, Any] | None:
        """Return the org's record of response_id, or None when unknown or expired."""
        key = record_key(org_id, response_id)
        if not settings.REDIS_URL:
            raw = MEMORY.get(key)
        else:
            raw = await self._redis().get(key)
        if raw is None:
            return None
        record = orjson.loads(raw)
        return record if isinstance(record, dict) else None

    async def save(self, org_id: int, response_id: str, record: dict[str, Any]) -> None:
        """Store a record for ttl_seconds; a failure is logged, never raised.

        The caller's answer does not depend on the store, so a Redis outage only
        makes later previous_response_id lookups of this response fail.
        """
        raw = orjson.dumps(record)
        if len(raw) > MAX_RECORD_BYTES:
            logger.warning(
                "response %s not stored: record of %s bytes is over the limit",
                response_id,
                len(raw),
                extra={"tenant_id": org_id},
            )
            return
        key = record_key(org_id, response_id)
        if not settings.REDIS_URL:
            MEMORY.set(key, raw, ttl_seconds())
            return
        try:
            await self._redis().set(key, raw, ex=ttl_seconds())
        except (aioredis.RedisError, OSError) as exc:
            logger.warning(
                "response %s not stored: %s",
                response_id,
                type(exc).__name__,
                extra={"tenant_id": org_id},
            )

    async def delete(self, org_id: int, response_id: str) -> bool:
        """Remove the org's record of response_id; return whether one was stored."""
        key = record_key(org_id, response_id)
        if not settings.REDIS_URL:
            return MEMORY.delete(key)
        return bool(await self._redis().delete(key))

    def _redis(self) -> aioredis.Redis:
        # The runtime's client is closed when the runtime stops.
        if self.runtime.redis is None:
            self.runtime.redis = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2
            )
        return self.runtime.redis


class MemoryRecords:
    """A bounded in-process map of records with expiry times, oldest dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        entry = self.records.get(key)
        if entry is None:
            return None
        expires, raw = entry
        if expires < time.monotonic():
            del self.records[key]
            return None
        return raw

    def delete(self, key: str) -> bool:
        found = self.get(key) is not None
        self.records.pop(key, None)
        return found

    def set(self, key: str, raw: bytes, ttl: int) -> None:
        self.records[key] = (time.monotonic() + ttl, raw)
        self.records.move_to_end(key)
        while len(self.records) > self.capacity:
            self.records.popitem(last=False)


MEMORY = MemoryRecords(MEMORY_CAPACITY)
