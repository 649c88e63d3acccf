"""Request-rate counters for the rate-limit hook: one interface, two backends.

Both use a sliding window approximated from two fixed windows: the count of the
previous window is weighted by how much of it still overlaps the sliding window.
The memory backend serves one process (the embedded default); the Redis backend
shares counts between processes with one Lua call per check.
"""

import math
import threading
import time


class RateCounter:
    """Count hits per key and tell when a limit is reached."""

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        """Count one hit; return None when allowed, else the seconds to wait."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


def _estimate(previous: int, current: int, elapsed: float, window: float) -> float:
    return previous * (1 - elapsed / window) + current


class MemoryRateCounter(RateCounter):
    """Per-process counters."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.windows: dict[str, dict[int, int]] = {}
        self.lock = threading.Lock()

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        now = self.clock()
        slot = int(now // window)
        elapsed = now - slot * window
        with self.lock:
            counts = self.windows.setdefault(key, {})
            for old in [old for old in counts if old < slot - 1]:
                del counts[old]
            previous, current = counts.get(slot - 1, 0), counts.get(slot, 0)
            if _estimate(previous, current + 1, elapsed, window) > limit:
                return _wait(previous, current, elapsed, window, limit)
            counts[slot] = current + 1
        return None


def _wait(
    previous: int, current: int, elapsed: float, window: float, limit: int
) -> float:
    """Return the seconds until one more hit fits, at most the rest of this window."""
    rest = window - elapsed
    if previous <= 0 or current + 1 > limit:
        return max(rest, 0.001)
    # The weighted previous count shrinks linearly until the window ends.
    needed = (previous + current + 1 - limit) / previous * window - elapsed
    return min(max(needed, 0.001), rest)


_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if previous * weight + current + 1 > limit then
  return {0, previous, current}
end
current = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ttl)
return {1, previous, current}
"""


class RedisRateCounter(RateCounter):
    """Counters shared by every process through Redis."""

    def __init__(self, url: str, prefix: str = "nexus:hooks:rate:") -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(url, socket_timeout=1)
        self.prefix = prefix
        self.script = self.client.register_script(_SCRIPT)

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        now = time.time()
        slot = int(now // window)
        elapsed = now - slot * window
        keys = [f"{self.prefix}{key}:{slot - 1}", f"{self.prefix}{key}:{slot}"]
        weight = 1 - elapsed / window
        allowed, previous, current = await self.script(
            keys=keys, args=[limit, weight, math.ceil(window * 2) + 1]
        )
        if allowed:
            return None
        return _wait(int(previous), int(current), elapsed, window, limit)

    async def close(self) -> None:
        await self.client.aclose()
