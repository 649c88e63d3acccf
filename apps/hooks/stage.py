"""The hooks stage of the gateway: request hooks before the upstream call, response
hooks on the answer, and the outcomes in the audit event's `details["hooks"]`.

Pipelines are built per organization from the snapshot in a worker thread (pattern
databases take milliseconds to compile) and reused until the snapshot changes.
"""

import asyncio
import logging
from typing import Any

from django.conf import settings

from apps.hooks.snapshot import HooksConfig
from nexus.engine.call import Call
from nexus.engine.canonical import ChatRequest, EmbeddingsRequest
from nexus.engine.hooks.base import (
    Hook,
    HookContext,
    HookError,
    HookServices,
)
from nexus.engine.hooks.options import HookConfigError
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline
from nexus.engine.hooks.ratelimit import MemoryRateCounter, RedisRateCounter
from nexus.engine.hooks.registry import build_hook
from nexus.engine.hooks.segments import request_segments, write_back
from nexus.engine.hooks.stream import ResponseHookFilter
from nexus.engine.hooks.webhook import WebhookClient
from nexus.engine.stages import ResponseFilter, Stage

logger = logging.getLogger(__name__)


class BrokenHook(Hook):
    """Stands in for a hook whose options do not build, so its fail mode applies."""

    kind = "broken"
    is_async = True
    stages = frozenset({"connection", "request", "response"})

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def check(self, context, segments):
        raise HookError(f"the hook is misconfigured: {self.problem}")


def build_org_pipeline(specs: tuple[HookSpec, ...], services: HookServices) -> Pipeline:
    """Build a pipeline; a hook that does not build fails by its own fail mode."""
    bound = []
    for spec in specs:
        try:
            hook = build_hook(spec, services)
        except HookConfigError as exc:
            logger.error(
                "hook %s is misconfigured: %s",
                spec.name,
                exc,
                extra={"hook_id": spec.id},
            )
            hook = BrokenHook(str(exc))
        bound.append(BoundHook(spec, hook))
    return Pipeline(bound)


def hook_context(call: Call, stage: str, request: Any) -> HookContext:
    """Return what hooks may know about a request besides its text."""
    key, connection, model = call.key, call.connection, call.model
    body_bytes = call.state.get("body_bytes")
    if body_bytes is None and call.headers.get("content-length", "").isdigit():
        body_bytes = int(call.headers["content-length"])
    if isinstance(request, ChatRequest):
        count = len(request.messages)
    elif isinstance(request, EmbeddingsRequest):
        count = len(request.inputs)
    else:
        count = 0
    return HookContext(
        stage=stage,
        request_id=call.request_id,
        org_id=key.org_id if key else None,
        project_id=key.project_id if key else None,
        key_id=key.id if key else None,
        client_ip=call.client_ip,
        ingress=call.ingress,
        model=model.name if model else "",
        provider=connection.name if connection else "",
        provider_type=connection.provider_type if connection else "",
        region=connection.region if connection else "",
        body_bytes=body_bytes,
        message_count=count,
        tags=set(call.tags),
    )


class HooksStage(Stage):
    """Run the configured hooks on every request and answer."""

    name = "hooks"

    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self.config: HooksConfig | None = None
        self.pipelines: dict[int | None, Pipeline] = {}
        # Counters are keyed per database, so deployments (and test runs) that
        # share one Redis never count each other's key ids.
        database = settings.DATABASES["default"]["NAME"]
        counter = (
            RedisRateCounter(settings.REDIS_URL, prefix=f"nexus:hooks:rate:{database}:")
            if settings.REDIS_URL
            else MemoryRateCounter()
        )
        self.services = HookServices(
            counter=counter, http=WebhookClient(self._allowed_hosts)
        )

    def _allowed_hosts(self) -> frozenset[str]:
        return self.config.allowed_hosts if self.config else frozenset()

    async def pipeline(self, org_id: int | None) -> Pipeline | None:
        """Return the organization's pipeline for the current snapshot, or None."""
        config = self.runtime.snapshot.extension("hooks")
        if not isinstance(config, HooksConfig) or not config.hooks:
            return None
        if config is not self.config:
            self.config, self.pipelines = config, {}
        if org_id not in self.pipelines:
            specs = config.for_org(org_id)
            self.pipelines[org_id] = await asyncio.to_thread(
                build_org_pipeline, specs, self.services
            )
        return self.pipelines[org_id]

    async def on_request(self, call: Call, request: Any):
        if "hooks" in call.state.get("bypass", ()):
            call.details["hooks"] = {"bypassed": True}
            return None
        pipeline = await self.pipeline(call.key.org_id if call.key else None)
        if pipeline is None:
            return None
        state = call.state.setdefault("hooks", {"pipeline": pipeline})
        details = call.details.setdefault("hooks", {"decision": "approve"})
        if not pipeline.hooks("request"):
            return None

        segments = request_segments(request)
        context = hook_context(call, "request", request)
        outcome = await pipeline.run("request", context, segments)

        call.tags |= outcome.tags
        details["request"] = [record.to_dict() for record in outcome.records]
        details["decision"] = outcome.decision.label
        if outcome.unscanned:
            details["unscanned"] = True
        state["redactions"] = len(outcome.redactions)
        if outcome.error is not None:
            state["blocked"] = True
            raise outcome.error
        if write_back(request, segments, outcome.texts):
            call.state["request_modified"] = True
        return None

    def response_filter(self, call: Call, request: Any) -> ResponseFilter | None:
        state = call.state.get("hooks")
        if not state or not isinstance(request, ChatRequest):
            return None
        pipeline: Pipeline = state["pipeline"]
        if not pipeline.hooks("response"):
            return None
        if "normalize" in call.state.get("bypass", ()):
            # NOTE: bypassNormalize lets the body pass as sent where the formats
            # match, which means no canonical answer for response hooks to read.
            call.details["hooks"]["response_skipped"] = "bypass normalize"
            return None
        context = hook_context(call, "response", request)
        context.tags = set(call.tags)
        response_filter = ResponseHookFilter(pipeline, context)
        state["filter"] = response_filter
        return response_filter

    async def on_complete(self, call: Call, request: Any) -> None:
        state = call.state.get("hooks")
        response_filter = state.get("filter") if state else None
        if response_filter is None:
            return
        details = call.details["hooks"]
        details["response"] = [
            record.to_dict() for record in response_filter.records.values()
        ]
        if response_filter.decision == "block" or (
            response_filter.decision == "redact"
            and details.get("decision") == "approve"
        ):
            details["decision"] = response_filter.decision

    async def close(self) -> None:
        await self.services.http.close()
        await self.services.counter.close()
