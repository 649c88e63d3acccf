"""The per-request state shared by every pipeline stage and the audit event."""

import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.canonical import Usage
from nexus.engine.pricing import cost_nano
from nexus.engine.snapshot import ConnectionEntry, KeyEntry, ModelEntry

# Request ids are a random per-process prefix and a counter: unique across processes
# like a UUID4, at a fraction of its cost on the hot path.
_ID_PREFIX = "req_" + os.urandom(8).hex()
_id_counter = itertools.count(1)


def _new_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = "req_" + os.urandom(8).hex()


# A forked worker must not repeat its parent's ids.
os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """Return a request id unique across processes and restarts."""
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


@dataclass
class Call:
    """The state of one request as it moves through the pipeline.

    Stages keep their per-request data in `state` under their own name and add what
    the audit event should show to `details`.
    """

    ingress: str
    client_ip: str | None = None
    request_id: str = field(default_factory=new_request_id)
    created_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    headers: dict[str, str] = field(default_factory=dict)
    key: KeyEntry | None = None
    requested_model: str = ""
    model: ModelEntry | None = None
    connection: ConnectionEntry | None = None
    stream: bool = False
    status: int = 0
    error_code: str = ""
    ttfb_ms: float | None = None
    usage: Usage = field(default_factory=Usage)
    # Set when the provider returned a complete response. Partial streams stay False.
    complete: bool = False
    # Classification and other labels set by hooks, read by routing and audit.
    tags: set[str] = field(default_factory=set)
    state: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)

    def mark_first_byte(self) -> None:
        if self.ttfb_ms is None:
            self.ttfb_ms = (time.perf_counter() - self.started) * 1000

    @property
    def cost_nano(self) -> int:
        return cost_nano(self.usage, self.model.prices) if self.model else 0

    def answer_headers(self) -> dict[str, str]:
        """Return the headers every response carries: the request id and what served it.

        The id goes out twice: `x-request-id` as OpenAI's SDK reads it and
        `request-id` as Anthropic's SDK reads it.
        """
        headers = {"x-request-id": self.request_id, "request-id": self.request_id}
        if self.connection is not None and self.model is not None:
            headers["x-nexus-provider"] = self.connection.name
            headers["x-nexus-model"] = self.model.name
        headers.update(self.response_headers)
        return headers

    def event(self) -> dict[str, Any]:
        """Return the audit event fields for the background writer."""
        key, model, connection = self.key, self.model, self.connection
        details = dict(self.details)
        if self.tags:
            details["tags"] = sorted(self.tags)
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "organization_id": key.org_id if key else None,
            "project_id": key.project_id if key else None,
            "key_id": key.id if key else None,
            "key_prefix": key.prefix if key else "",
            "ingress": self.ingress,
            "stream": self.stream,
            "requested_model": self.requested_model,
            "model": model.name if model else "",
            "upstream_model": model.upstream_model if model else "",
            "provider": connection.name if connection else "",
            "provider_type": connection.provider_type if connection else "",
            "status_code": self.status,
            "error_code": self.error_code,
            "latency_ms": (time.perf_counter() - self.started) * 1000,
            "ttfb_ms": self.ttfb_ms,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cached_tokens": self.usage.cached_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "usage_reported": self.usage.reported,
            "cost_nano_usd": self.cost_nano,
            "client_ip": self.client_ip,
            "details": details,
        }
