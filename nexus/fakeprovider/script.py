"""Scripted responses: their parsing, the FIFO queue and how they are played.

A scripted response is a dict with at most one body form:

- ``{"json": obj}``: a JSON body.
- ``{"body": str-or-bytes}``: a raw body (content type from ``headers``).
- ``{"sse": text}``: raw server-sent events, replayed byte for byte in one chunk per
  event (an event ends at a blank line).
- ``{"chunks": [str-or-bytes, ...]}``: a streamed body sent chunk by chunk.
- ``{"error": {"type": ..., "message": ..., "code": ...}}`` or ``{"error": type}``:
  an error body in the format of the vendor that owns the path (status 500 unless
  ``status`` sets another code).
- ``{"reply": {...}}``: the vendor's default response with overrides (``text``,
  ``tool_calls``, ``reasoning``, ``finish_reason``, ``usage``), in the wire format the
  request selects, streamed or not.
- ``{"hang": true}``: no response until ``reset()`` or shutdown closes the connection.
- no body form: the vendor's default response.

Options:

- ``status``: the HTTP status of the json, body, sse, chunks and error forms.
- ``headers``: added to any response.
- ``delay``: seconds to wait before responding.
- ``chunk_delay``: seconds between stream chunks.
- ``"then": "close"``: abort the connection after the sse or chunks body, or at once
  when there is no body form.
- ``close_after``: abort a stream after that many chunks.
"""

import asyncio
import dataclasses
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from nexus.fakeprovider.reply import Usage
from nexus.fakeprovider.vendors.base import (
    Call,
    Handler,
    Vendor,
    abort_connection,
    write_chunks,
)

logger = logging.getLogger(__name__)

_BODY_FORMS = ("json", "body", "sse", "chunks", "error", "reply", "hang")
_OPTIONS = ("status", "headers", "then", "delay", "chunk_delay", "close_after")
_REPLY_KEYS = ("text", "tool_calls", "reasoning", "finish_reason", "usage")
_USAGE_KEYS = tuple(usage_field.name for usage_field in dataclasses.fields(Usage))
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class ScriptError(ValueError):
    """A scripted response is malformed."""


@dataclass(frozen=True)
class ScriptedResponse:
    """A validated scripted response; see the module docstring for the forms."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunks: tuple[bytes, ...] | None = None
    error: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None
    hang: bool = False
    close: bool = False
    close_after: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0


def split_events(raw: bytes) -> list[bytes]:
    """Split raw server-sent events after each blank line; the parts join to ``raw``."""
    chunks = []
    start = 0
    for match in _EVENT_END.finditer(raw):
        chunks.append(raw[start : match.end()])
        start = match.end()
    if start < len(raw):
        chunks.append(raw[start:])
    return chunks


def parse_script(data: Any) -> ScriptedResponse:
    """Validate a scripted response dict and return it in its played form."""
    if not isinstance(data, dict):
        raise ScriptError(f"A scripted response must be a dict, got {data!r}.")
    unknown = sorted(set(data) - set(_BODY_FORMS) - set(_OPTIONS))
    if unknown:
        raise ScriptError(f"Unknown scripted response keys: {', '.join(unknown)}.")
    forms = [form for form in _BODY_FORMS if form in data]
    if data.get("hang") is False:
        forms.remove("hang")
    if len(forms) > 1:
        raise ScriptError(f"Use one body form per response, got {', '.join(forms)}.")

    form = forms[0] if forms else None
    status = _status(data.get("status", 500 if form == "error" else 200))
    headers = {
        str(name): str(value) for name, value in (data.get("headers") or {}).items()
    }
    then = data.get("then", "end")
    if then not in ("end", "close"):
        raise ScriptError(f"then must be 'end' or 'close', got {then!r}.")
    if then == "close" and form not in (None, "sse", "chunks"):
        raise ScriptError("then='close' works with sse, chunks or no body form.")
    if status != 200 and form in (None, "reply"):
        raise ScriptError("status needs a json, body, sse, chunks or error form.")

    script = ScriptedResponse(
        status=status,
        headers=headers,
        close=then == "close",
        close_after=_optional_count(data.get("close_after")),
        delay=_seconds(data, "delay"),
        chunk_delay=_seconds(data, "chunk_delay"),
    )
    return _with_body(script, form, data)


def _with_body(
    script: ScriptedResponse, form: str | None, data: dict[str, Any]
) -> ScriptedResponse:
    headers = script.headers
    if form == "json":
        if not any(name.lower() == "content-type" for name in headers):
            headers = {"Content-Type": "application/json", **headers}
        return dataclasses.replace(
            script, headers=headers, body=orjson.dumps(data["json"])
        )
    if form == "body":
        return dataclasses.replace(script, body=_bytes(data["body"]))
    if form == "sse":
        chunks = tuple(split_events(_bytes(data["sse"])))
        return dataclasses.replace(script, chunks=chunks)
    if form == "chunks":
        chunks = tuple(_bytes(chunk) for chunk in data["chunks"])
        return dataclasses.replace(script, chunks=chunks)
    if form == "error":
        return dataclasses.replace(script, error=_error(data["error"]))
    if form == "reply":
        return dataclasses.replace(script, reply=_reply(data["reply"]))
    if form == "hang":
        return dataclasses.replace(script, hang=True)
    return script


def _status(value: Any) -> int:
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise ScriptError(f"status must be an HTTP status code, got {value!r}.")
    return value


def _seconds(data: dict[str, Any], key: str) -> float:
    value = data.get(key, 0.0)
    if not isinstance(value, int | float) or value < 0:
        raise ScriptError(f"{key} must be a number of seconds >= 0, got {value!r}.")
    return float(value)


def _optional_count(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or value < 0):
        raise ScriptError(f"close_after must be a chunk count >= 0, got {value!r}.")
    return value


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise ScriptError(f"Expected str or bytes, got {type(value).__name__}.")


def _error(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict) or "type" not in value:
        raise ScriptError(
            f"error must be a type name or a dict with type, got {value!r}."
        )
    return {
        "type": str(value["type"]),
        "message": str(value.get("message", "Scripted error.")),
        "code": value.get("code"),
    }


def _reply(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScriptError(f"reply must be a dict, got {value!r}.")
    unknown = sorted(set(value) - set(_REPLY_KEYS))
    if unknown:
        raise ScriptError(f"Unknown reply keys: {', '.join(unknown)}.")
    unknown_usage = sorted(set(value.get("usage") or {}) - set(_USAGE_KEYS))
    if unknown_usage:
        raise ScriptError(f"Unknown reply usage keys: {', '.join(unknown_usage)}.")
    for call in value.get("tool_calls") or []:
        if not isinstance(call, dict) or "name" not in call:
            raise ScriptError(f"Each reply tool call needs a name, got {call!r}.")
    return value


class ScriptQueue:
    """Thread-safe FIFO of scripted responses, each bound to a path suffix or to any path."""

    def __init__(self) -> None:
        self._entries: list[tuple[str | None, ScriptedResponse]] = []
        self._lock = threading.Lock()

    def add(self, path_suffix: str | None, script: ScriptedResponse) -> None:
        """Queue a response for the next request whose path ends with the suffix."""
        with self._lock:
            self._entries.append((path_suffix, script))

    def pop(self, path: str) -> ScriptedResponse | None:
        """Remove and return the oldest response that matches the path."""
        if not self._entries:
            return None
        with self._lock:
            for position, (suffix, script) in enumerate(self._entries):
                if suffix is None or path.endswith(suffix):
                    del self._entries[position]
                    return script
        return None

    def pending(self) -> int:
        """Return the number of queued responses."""
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Drop every queued response."""
        with self._lock:
            self._entries.clear()


async def play_script(
    script: ScriptedResponse,
    call: Call,
    vendor: Vendor,
    handler: Handler,
    wait_for_release: Callable[[], Awaitable[None]],
) -> web.StreamResponse:
    """Send the scripted response; ``handler`` builds the vendor's default response."""
    if script.delay:
        await asyncio.sleep(script.delay)
    if script.hang:
        await wait_for_release()
    if script.hang or (script.close and script.chunks is None):
        abort_connection(call.request)
        return web.Response()

    if script.error is not None or script.body is not None or script.chunks is not None:
        return await _play_body(script, call, vendor)

    scripted_call = dataclasses.replace(
        call,
        reply_override=script.reply,
        chunk_delay=script.chunk_delay,
        close_after=script.close_after,
        response_headers=script.headers,
    )
    response = await handler(scripted_call)
    if not response.prepared:
        response.headers.update(script.headers)
    return response


async def _play_body(
    script: ScriptedResponse, call: Call, vendor: Vendor
) -> web.StreamResponse:
    if script.error is not None:
        error = script.error
        return vendor.error_response(
            script.status,
            error["type"],
            error["message"],
            script.headers,
            error["code"],
        )
    if script.body is not None:
        return web.Response(
            status=script.status, body=script.body, headers=script.headers
        )
    return await write_chunks(
        call.request,
        script.chunks or (),
        status=script.status,
        headers=script.headers,
        chunk_delay=script.chunk_delay,
        close_after=len(script.chunks or ()) if script.close else script.close_after,
    )
