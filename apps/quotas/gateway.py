"""The quota stage as the gateway builds it: counter store, snapshot and alerts."""

import asyncio
from typing import TYPE_CHECKING

from django.conf import settings

from apps.quotas.services import enqueue_soft_limit_alert
from nexus.engine.quotas.backend import MemoryBackend, QuotaBackend
from nexus.engine.quotas.redis_backend import RedisBackend
from nexus.engine.quotas.stage import QuotaStage, SoftLimitCrossing

if TYPE_CHECKING:
    from apps.gateway.runtime import GatewayRuntime

# Seconds past the upstream timeout after which an unsettled reservation is
# released: its gateway process is assumed dead.
RESERVATION_MARGIN_SECONDS = 60
# Maximum wait for pending audit events before counters are rebuilt after an outage.
AUDIT_FLUSH_SECONDS = 10.0


def build_stage(runtime: "GatewayRuntime") -> QuotaStage:
    """Return the quota stage of one gateway process."""
    backend: QuotaBackend
    if settings.REDIS_URL:
        backend = RedisBackend(
            settings.REDIS_URL,
            timeout=settings.NEXUS_QUOTA_REDIS_TIMEOUT,
            retry_seconds=settings.NEXUS_QUOTA_REDIS_RETRY_SECONDS,
        )
    else:
        backend = MemoryBackend()

    async def rebuild_seeds() -> None:
        # Store the audit events of requests served during the outage, then reload
        # so the snapshot's seeds hold all audited usage for counters Redis lost.
        await asyncio.to_thread(runtime.audit.flush, AUDIT_FLUSH_SECONDS)
        await runtime.reload()

    return QuotaStage(
        config=lambda: runtime.snapshot.extension("quotas"),
        backend=backend,
        reservation_seconds=settings.NEXUS_UPSTREAM_TIMEOUT
        + RESERVATION_MARGIN_SECONDS,
        on_soft_limit=send_alert,
        on_recovered=rebuild_seeds,
    )


async def send_alert(crossing: SoftLimitCrossing) -> None:
    """Queue the alert task in a worker thread: publishing to the broker blocks."""
    await asyncio.to_thread(enqueue_soft_limit_alert, crossing)
