"""Audit events in SIEM formats: a plain record, CEF inside RFC 5424 syslog, Splunk HEC.

Records carry ids, metadata, decisions and tags, never prompt or answer text.
Every format carries the event id (the request id), which receivers use to drop
the duplicates that at-least-once delivery can produce.
"""

import socket
from datetime import UTC
from typing import Any

import orjson

from apps.audit.models import AuditEvent

VENDOR = "Nexus"
PRODUCT = "Nexus Gateway"
VERSION = "1.0"
# Private enterprise number placeholder for the structured-data id (RFC 5424 6.3.2).
SD_ID = "nexus@32473"


def event_record(event: AuditEvent) -> dict[str, Any]:
    """Return the fields forwarded for one audit event."""
    details = event.details or {}
    hooks = details.get("hooks") or {}
    return {
        "id": event.request_id,
        "time": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "organization_id": event.organization_id,
        "project_id": event.project_id,
        "key_prefix": event.key_prefix,
        "ingress": event.ingress,
        "model": event.model or event.requested_model,
        "provider": event.provider,
        "status": event.status_code,
        "error_code": event.error_code,
        "latency_ms": round(event.latency_ms, 2),
        "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens,
        "cost_nano_usd": event.cost_nano_usd,
        "client_ip": event.client_ip,
        "decision": hooks.get("decision", ""),
        "unscanned": bool(hooks.get("unscanned")),
        "tags": details.get("tags") or [],
        "bypass": (details.get("controls") or {}).get("bypass") or [],
    }


def severity(record: dict[str, Any]) -> int:
    """Return the syslog severity: 3 error for 5xx, 4 warning for blocks, 6 info else."""
    if record["status"] >= 500:
        return 3
    if record["decision"] == "block" or record["status"] in (401, 403, 429):
        return 4
    return 6


def _cef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value: Any) -> str:
    text = "" if value is None else str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
    )


def cef(record: dict[str, Any]) -> str:
    """Return the event as a CEF line (ArcSight Common Event Format, version 0)."""
    blocked = record["decision"] == "block"
    signature = "request-blocked" if blocked else "request"
    name = "LLM request blocked" if blocked else "LLM request"
    cef_severity = {3: 8, 4: 5, 6: 2}[severity(record)]
    extension = {
        "externalId": record["id"],
        "rt": record["time"],
        "src": record["client_ip"],
        "suser": record["key_prefix"],
        "app": record["ingress"],
        "request": record["model"],
        "dhost": record["provider"],
        "outcome": record["status"],
        "act": record["decision"] or "approve",
        "cs1Label": "organizationId",
        "cs1": record["organization_id"],
        "cs2Label": "tags",
        "cs2": ",".join(record["tags"]),
        "cs3Label": "errorCode",
        "cs3": record["error_code"],
        "cn1Label": "inputTokens",
        "cn1": record["input_tokens"],
        "cn2Label": "outputTokens",
        "cn2": record["output_tokens"],
        "cn3Label": "costNanoUsd",
        "cn3": record["cost_nano_usd"],
    }
    pairs = " ".join(
        f"{key}={_cef_value(value)}"
        for key, value in extension.items()
        if value not in (None, "")
    )
    header = "|".join(
        _cef_header(part)
        for part in (VENDOR, PRODUCT, VERSION, signature, name, str(cef_severity))
    )
    return f"CEF:0|{header}|{pairs}"


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(record: dict[str, Any], facility: int, app_name: str = "nexus") -> bytes:
    """Return one RFC 5424 syslog message whose MSG is the CEF line."""
    priority = facility * 8 + severity(record)
    hostname = (socket.gethostname() or "-")[:255]
    msgid = "blocked" if record["decision"] == "block" else "request"
    structured = f'[{SD_ID} eventId="{_sd_value(record["id"])}"]'
    return (
        f"<{priority}>1 {record['time']} {hostname} {app_name} - {msgid} "
        f"{structured} {cef(record)}"
    ).encode()


def hec_payload(records: list[dict[str, Any]]) -> bytes:
    """Return a Splunk HEC batch: one JSON object per event, concatenated."""
    hostname = socket.gethostname()
    return b"\n".join(
        orjson.dumps(
            {
                "time": record["time"],
                "host": hostname,
                "source": "nexus",
                "sourcetype": "nexus:audit",
                "event": record,
            }
        )
        for record in records
    )


def webhook_payload(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"events": records})
