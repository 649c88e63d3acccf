"""Per-process state of the traffic plane: snapshot, upstream pool, audit writer.

The runtime starts with the ASGI lifespan (or on the first request), loads the
snapshot in a worker thread and keeps it current from config-change messages.
"""

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from apps.audit.writer import AuditWriter
from apps.gateway import changes
from apps.gateway.pipeline import build_router, build_stages
from apps.gateway.snapshot_builder import build_snapshot
from nexus.engine.http import UpstreamClient
from nexus.engine.providers.base import OptionsError, ProviderAdapter
from nexus.engine.providers.registry import build_adapter
from nexus.engine.snapshot import Snapshot
from nexus.engine.stages import Stage
from nexus.engine.targets import Router

logger = logging.getLogger(__name__)


class GatewayRuntime:
    """Everything one gateway process shares between requests."""

    def __init__(self) -> None:
        self.snapshot = Snapshot(version=-1)
        self.adapters: dict[int, ProviderAdapter] = {}
        self.client = UpstreamClient(
            pool_size=settings.NEXUS_UPSTREAM_POOL_SIZE,
            connect_timeout=settings.NEXUS_UPSTREAM_CONNECT_TIMEOUT,
        )
        self.audit = AuditWriter(
            batch_size=settings.NEXUS_AUDIT_BATCH_SIZE,
            flush_seconds=settings.NEXUS_AUDIT_FLUSH_SECONDS,
            linger_seconds=settings.NEXUS_AUDIT_LINGER_SECONDS,
            max_queue=settings.NEXUS_AUDIT_QUEUE_SIZE,
        )
        self.tasks: list[asyncio.Task] = []
        self.started = False
        self.start_lock = asyncio.Lock()
        self.reload_lock = asyncio.Lock()
        self.wakeup = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis: aioredis.Redis | None = None
        # Requests being served; their audit events are not queued yet.
        self.in_flight = 0
        # Pipeline stages in order (kill switches, hooks, quotas, cache) and the router.
        self.stages: list[Stage] = []
        self.router: Router = Router()

    async def start(self) -> None:
        """Load the first snapshot and start the watcher; repeat calls do nothing."""
        async with self.start_lock:
            if self.started:
                return
            self.loop = asyncio.get_running_loop()
            self.stages = build_stages(self)
            self.router = build_router(self)
            self.audit.start()
            await self.reload()
            changes.add_local_listener(self._local_change)
            self.tasks.append(
                asyncio.create_task(self._poll(), name="nexus-config-poll")
            )
            if settings.REDIS_URL:
                self.tasks.append(
                    asyncio.create_task(
                        self._subscribe(), name="nexus-config-subscribe"
                    )
                )
            self.started = True
            logger.info(
                "gateway runtime started with config version %s", self.snapshot.version
            )

    async def stop(self) -> None:
        changes.remove_local_listener(self._local_change)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        for stage in self.stages:
            await stage.close()
        await self.router.close()
        await self.client.close()
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        await asyncio.to_thread(self.audit.stop)
        self.started = False

    def adapter(self, connection_id: int) -> ProviderAdapter:
        return self.adapters[connection_id]

    def submit_audit(self, event: dict[str, Any]) -> None:
        self.audit.submit(event)

    async def reload(self) -> None:
        """Rebuild the snapshot from the database in a worker thread."""
        async with self.reload_lock:
            version = await asyncio.to_thread(_read_version)
            snapshot = await asyncio.to_thread(_build, version)
            adapters = {}
            for connection in list(snapshot.connections.values()):
                try:
                    adapters[connection.id] = build_adapter(connection)
                except (KeyError, OptionsError) as exc:
                    logger.error(
                        "provider connection %s skipped: %r", connection.name, exc
                    )
            if len(adapters) != len(snapshot.connections):
                snapshot = _without_broken_connections(snapshot, set(adapters))
            self.adapters = adapters
            self.snapshot = snapshot

    def _local_change(self, version: int) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.wakeup.set)

    async def _poll(self) -> None:
        while True:
            try:
                await asyncio.wait_for(
                    self.wakeup.wait(), settings.NEXUS_CONFIG_POLL_SECONDS
                )
            except TimeoutError:
                pass
            self.wakeup.clear()
            try:
                version = await self._remote_version()
                if version != self.snapshot.version:
                    await self.reload()
            except Exception:
                logger.exception(
                    "config reload failed; serving config version %s",
                    self.snapshot.version,
                )

    async def _remote_version(self) -> int:
        if not settings.REDIS_URL:
            return changes.local_version()
        if self.redis is None:
            self.redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        return int(await self.redis.get(changes.VERSION_KEY) or 0)

    async def _subscribe(self) -> None:
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(changes.CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wakeup.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "config subscription lost (%s); polling until it returns", exc
                )
                await asyncio.sleep(1)
            finally:
                await client.aclose()


def _read_version() -> int:
    return changes.current_version()


def _build(version: int) -> Snapshot:
    from django.db import close_old_connections

    close_old_connections()
    try:
        return build_snapshot(version)
    finally:
        close_old_connections()


def _without_broken_connections(snapshot: Snapshot, usable: set[int]) -> Snapshot:
    """Return the snapshot without connections that have no codec, and their models."""
    return Snapshot(
        version=snapshot.version,
        keys=snapshot.keys,
        models={
            name: m for name, m in snapshot.models.items() if m.connection_id in usable
        },
        connections={
            cid: c for cid, c in snapshot.connections.items() if cid in usable
        },
        extensions=snapshot.extensions,
    )
