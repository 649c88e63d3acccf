"""Quota counters in Redis: each reservation and settlement is one Lua script call.

When Redis cannot be reached the backend marks itself unavailable, so requests skip
it without waiting on timeouts, and a background probe pings Redis every
`retry_seconds`. Once a ping succeeds, the backend is available again and
`on_recovered` runs.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from nexus.engine.quotas.backend import (
    BackendUnavailableError,
    QuotaBackend,
    ReserveCounter,
    ReserveOutcome,
    SettleCounter,
    SettleOutcome,
    settle_delta,
)
from nexus.engine.quotas.rules import ledger_keys

logger = logging.getLogger(__name__)

POOL_WAIT_SECONDS = 5.0


def _script(name: str) -> str:
    package = resources.files("nexus.engine.quotas")
    common = package.joinpath("common.lua").read_text()
    return common + "\n" + package.joinpath(name).read_text()


RESERVE_SCRIPT = _script("reserve.lua")
SETTLE_SCRIPT = _script("settle.lua")


def encode_seed(seed: tuple[tuple[int, int], ...] | None) -> str:
    if not seed:
        return ""
    return ",".join(f"{bucket}:{amount}" for bucket, amount in seed)


class RedisBackend(QuotaBackend):
    """Counters shared by every gateway process through one Redis."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        retry_seconds: float = 1.0,
        pool_size: int = 64,
        on_recovered: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        # Requests beyond the pool size wait for a connection, and each script call
        # uses one for well under a millisecond. A wait of POOL_WAIT_SECONDS means
        # Redis is not keeping up, which counts as unavailable.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=POOL_WAIT_SECONDS,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One retry covers a pooled connection that Redis closed while idle; a
            # second failure marks the store down instead of making requests wait.
            retry=Retry(NoBackoff(), 1),
        )
        self.client = aioredis.Redis(connection_pool=pool)
        self.reserve_script = self.client.register_script(RESERVE_SCRIPT)
        self.settle_script = self.client.register_script(SETTLE_SCRIPT)
        self.retry_seconds = retry_seconds
        self.on_recovered = on_recovered
        self.available = True
        self.down_since = 0.0
        self.probe: asyncio.Task | None = None

    async def reserve(
        self,
        org_id: int,
        reservation_id: str,
        counters: list[ReserveCounter],
        now: float,
        due: float,
    ) -> ReserveOutcome:
        keys = [*ledger_keys(org_id), *(counter.key for counter in counters)]
        args: list[str | int | float] = [now, reservation_id, due, len(counters)]
        for counter in counters:
            args += [
                counter.bucket,
                counter.oldest,
                counter.ttl,
                counter.amount,
                -1 if counter.hard is None else counter.hard,
                encode_seed(counter.seed),
                counter.amount if counter.floor is None else counter.floor,
            ]
        reply = await self._call(self.reserve_script, keys, args)
        count = len(counters)
        used = [int(value) for value in reply[3 : 3 + count]]
        if reply[0] == 1:
            reserved = [int(value) for value in reply[3 + count :]]
            return ReserveOutcome(True, used, reserved=reserved)
        return ReserveOutcome(
            False, used, rejected=int(reply[1]) - 1, drain_bucket=int(reply[2])
        )

    async def settle(
        self,
        org_id: int,
        reservation_id: str,
        counters: list[SettleCounter],
        now: float,
    ) -> SettleOutcome:
        keys = [*ledger_keys(org_id), *(counter.key for counter in counters)]
        keys += [counter.marker or counter.key for counter in counters]
        args: list[str | int | float] = [reservation_id, len(counters)]
        for counter in counters:
            open_bucket, open_amount = settle_delta(counter, True)
            gone_bucket, gone_amount = settle_delta(counter, False)
            args += [
                open_bucket,
                open_amount,
                gone_bucket,
                gone_amount,
                counter.oldest,
                counter.ttl,
                -1 if counter.soft is None else counter.soft,
                max(1, counter.marker_ttl),
                encode_seed(counter.seed),
            ]
        reply = await self._call(self.settle_script, keys, args)
        crossed = [None if value < 0 else int(value) for value in reply[1:]]
        return SettleOutcome(reply[0] == 1, crossed)

    async def usage(self, key: str, oldest: int) -> int:
        fields = await self._guard(self.client.hgetall(key))
        return sum(int(v) for b, v in fields.items() if int(b) >= oldest)

    async def existing(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.exists(key)
        flags = await self._guard(pipeline.execute())
        return {key for key, flag in zip(keys, flags, strict=True) if flag}

    async def close(self) -> None:
        if self.probe is not None:
            self.probe.cancel()
            await asyncio.gather(self.probe, return_exceptions=True)
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    async def _call(self, script, keys: list[str], args: list) -> list:
        return await self._guard(script(keys=keys, args=args))

    async def _guard(self, operation: Awaitable):
        if not self.available:
            operation.close()
            raise BackendUnavailableError("Redis is marked unavailable.")
        try:
            return await operation
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            raise BackendUnavailableError(
                f"Redis failed: {type(exc).__name__}."
            ) from None

    def _mark_down(self, exc: BaseException) -> None:
        if not self.available:
            return
        self.available = False
        self.down_since = time.monotonic()
        logger.warning(
            "quota counters unavailable: Redis failed with %s; probing every %s s",
            type(exc).__name__,
            self.retry_seconds,
        )
        self.probe = asyncio.ensure_future(self._probe())

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                await self.client.ping()
            except (RedisError, OSError):
                continue
            self.available = True
            logger.info(
                "quota counters available again after %.1f s",
                time.monotonic() - self.down_since,
            )
            if self.on_recovered is not None:
                try:
                    await self.on_recovered()
                except BackendUnavailableError:
                    # Redis failed again; _mark_down started the next probe.
                    return
                except Exception:
                    logger.exception(
                        "quota counters could not be rebuilt after Redis returned"
                    )
            return
