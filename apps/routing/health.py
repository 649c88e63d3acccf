"""Target health for this process: the backend the router uses and reads for screens.

Without REDIS_URL every gateway process keeps its own health in memory, and the
admin, served by the same process in the embedded default, reads that copy. With
REDIS_URL the router shares health through Redis and the admin reads Redis.
"""

import time
from dataclasses import dataclass

import redis
from django.conf import settings

from nexus.engine.routing.health import (
    BreakerConfig,
    HealthBackend,
    MemoryHealth,
    TargetHealth,
)
from nexus.engine.routing.redis_health import KEY_PREFIX, RedisHealth, state_from_hash

_memory: MemoryHealth | None = None


def breaker_config() -> BreakerConfig:
    """Return the breaker thresholds from settings."""
    return BreakerConfig(
        window_seconds=settings.NEXUS_ROUTING_WINDOW_SECONDS,
        bucket_seconds=settings.NEXUS_ROUTING_WINDOW_SECONDS / 6,
        min_requests=settings.NEXUS_ROUTING_BREAKER_MIN_REQUESTS,
        error_rate=settings.NEXUS_ROUTING_BREAKER_ERROR_RATE,
        consecutive_failures=settings.NEXUS_ROUTING_BREAKER_FAILURES,
        cooldown_seconds=settings.NEXUS_ROUTING_BREAKER_COOLDOWN_SECONDS,
        max_cooldown_seconds=settings.NEXUS_ROUTING_BREAKER_MAX_COOLDOWN_SECONDS,
    )


def memory_health() -> MemoryHealth:
    """Return this process's in-memory health, shared by its runtimes and the admin."""
    global _memory
    if _memory is None:
        _memory = MemoryHealth(breaker_config())
    return _memory


def gateway_health() -> HealthBackend:
    """Return a health backend for one gateway runtime."""
    if settings.REDIS_URL:
        return RedisHealth(settings.REDIS_URL, breaker_config())
    return memory_health()


@dataclass(frozen=True)
class HealthRow:
    """One target's health for a screen, with the model it belongs to."""

    model: str
    provider: str
    target_id: str
    health: TargetHealth


def read_health(target_ids: list[str]) -> dict[str, TargetHealth]:
    """Return the current health of each target id (sync; for the admin and the API)."""
    if not settings.REDIS_URL:
        return memory_health().views(target_ids)
    config = breaker_config()
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    try:
        pipeline = client.pipeline(transaction=False)
        for target_id in target_ids:
            pipeline.hgetall(KEY_PREFIX + target_id)
        hashes = pipeline.execute()
    finally:
        client.close()
    now = time.time()
    return {
        target_id: state_from_hash(data).view(now, config) if data else TargetHealth()
        for target_id, data in zip(target_ids, hashes, strict=True)
    }


def reset_health(target_id: str) -> None:
    """Close the target's breaker and forget its window.

    With Redis, each gateway process drops its local copy at its next sync.
    """
    if not settings.REDIS_URL:
        memory_health().reset(target_id)
        return
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    try:
        client.delete(KEY_PREFIX + target_id)
    finally:
        client.close()
