"""Write and test use cases of hooks."""

import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync

from apps.hooks.models import AllowedWebhookHost, Hook
from apps.hooks.snapshot import hook_spec
from apps.hooks.stage import build_org_pipeline
from nexus.engine.hooks.base import HookContext, HookServices, Segment
from nexus.engine.hooks.pipeline import HookRecord
from nexus.engine.hooks.ratelimit import MemoryRateCounter
from nexus.engine.hooks.webhook import WebhookClient


@dataclass
class PolicyTest:
    """The outcome of running hooks on sample text: records, decision and output text."""

    records: list[HookRecord]
    decision: str
    output: str
    error: str
    tags: list[str]


def run_policy_test(
    hooks: list[Hook], text: str, *, stage: str = "request", region: str = ""
) -> PolicyTest:
    """Run the given hooks on sample text as one message and report each decision.

    Rate-limit hooks count in a private counter, so a test never uses up real limits.
    """
    hosts = frozenset(AllowedWebhookHost.objects.values_list("host", flat=True))
    specs = tuple(hook_spec(hook) for hook in hooks if hook.stage == stage)
    client = WebhookClient(lambda: hosts)
    services = HookServices(counter=MemoryRateCounter(), http=client)
    pipeline = build_org_pipeline(specs, services)
    segments = [Segment("message" if stage == "request" else "output", text, "user")]
    context = HookContext(
        stage=stage,
        request_id=f"test_{int(time.time() * 1000)}",
        client_ip="127.0.0.1",
        region=region,
        body_bytes=len(text.encode()),
        message_count=1,
    )

    async def run():
        try:
            if stage == "response":
                return pipeline.run_sync(stage, context, segments)
            return await pipeline.run(stage, context, segments)
        finally:
            await client.close()

    outcome = async_to_sync(run)()
    return PolicyTest(
        records=outcome.records,
        decision=outcome.decision.label,
        output=outcome.texts[0] if outcome.texts else "",
        error=outcome.error.message if outcome.error else "",
        tags=sorted(outcome.tags),
    )


def save_hook(hook: Hook) -> Hook:
    """Validate the hook's kind, stage and options, then save it."""
    hook.full_clean()
    hook.save()
    return hook
