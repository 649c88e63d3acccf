"""The controls stage: kill switches and passthrough flags first, audit records last.

on_request stops killed traffic and puts the bypasses in force into
call.state["bypass"] for the hooks and cache stages. on_complete, which runs after
every other stage completed, hands the hook stage records and captured bodies to
the compliance writer, which stores them off the request path.
"""

import logging
from typing import Any

from django.conf import settings

from apps.compliance.writer import ComplianceWriter
from nexus.engine.call import Call
from nexus.engine.controls import ControlsConfig, active_bypasses, check_kill_switches
from nexus.engine.stages import Stage

logger = logging.getLogger(__name__)


class ControlsStage(Stage):
    name = "controls"

    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self.writer = ComplianceWriter(
            audit=runtime.audit,
            batch_size=settings.NEXUS_AUDIT_BATCH_SIZE,
            flush_seconds=settings.NEXUS_AUDIT_FLUSH_SECONDS,
            linger_seconds=settings.NEXUS_AUDIT_LINGER_SECONDS,
            max_queue=settings.NEXUS_AUDIT_QUEUE_SIZE,
        )
        self.writer.start()

    def config(self) -> ControlsConfig:
        config = self.runtime.snapshot.extension("controls")
        return config if isinstance(config, ControlsConfig) else ControlsConfig()

    async def on_request(self, call: Call, request: Any):
        config = self.config()
        org_id = call.key.org_id if call.key else None
        key_id = call.key.id if call.key else None
        check_kill_switches(config, org_id, key_id)
        connection_id = call.connection.id if call.connection else None
        bypass, flags = active_bypasses(config, org_id, connection_id)
        if bypass:
            call.state["bypass"] = bypass
            call.details["controls"] = {"bypass": sorted(bypass), "flags": flags}
        return None

    async def on_complete(self, call: Call, request: Any) -> None:
        config = self.config()
        org_id = call.key.org_id if call.key else None
        hooks = call.details.get("hooks") or {}
        records = [*hooks.get("request", []), *hooks.get("response", [])]
        capture = None
        if config.capture_all or (org_id is not None and org_id in config.capture_orgs):
            capture = body_capture(call, request)
        destinations = config.destinations(org_id) if call.key else []
        if not records and capture is None and not destinations:
            return
        self.writer.submit(
            {
                "request_id": call.request_id,
                "organization_id": org_id,
                "created_at": call.created_at,
                "records": records,
                "capture": capture,
                "destinations": destinations,
            }
        )

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self.writer.stop)


def body_capture(call: Call, request: Any) -> dict[str, Any]:
    """Return what to capture: the request as sent upstream and the answer as delivered.

    Both are the versions after hooks redacted them. A request a hook blocked is
    not stored, because its text was never redacted.
    """
    hooks_state = call.state.get("hooks") or {}
    if hooks_state.get("blocked"):
        return {
            "request": None,
            "response": None,
            "note": "blocked by a hook; body not stored",
        }
    response: Any = None
    result = call.state.get("result")
    if result is not None:
        response = result.body
    elif call.state.get("chunks"):
        response = call.state["chunks"]
    body = getattr(request, "body", None)
    return {"request": body, "response": response, "note": ""}
