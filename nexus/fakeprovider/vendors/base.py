"""Base class for one fake LLM vendor: its routes, auth check and error shape.

A vendor module maps shapes only. The server records each request, checks auth
through ``Vendor.authenticate``, plays any scripted response, and otherwise calls the
endpoint handler with a ``Call``. Handlers build a ``Reply`` with
``nexus.fakeprovider.reply.compose_reply`` and render it with ``json_response`` or
``stream``.
"""

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from aiohttp import web

logger = logging.getLogger(__name__)

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

_request_counter = itertools.count(1)


@dataclass(frozen=True)
class Call:
    """One authenticated request to a vendor endpoint, with its script options.

    ``body`` is the parsed JSON body, or None when the body is empty or not JSON.
    ``reply_override`` is a scripted ``reply`` (see ``compose_reply``).
    ``chunk_delay`` is the pause in seconds before each stream chunk after the
    first, and ``close_after`` drops the connection after that many stream chunks.
    ``response_headers`` are added to a streamed response.
    """

    request: web.Request
    body: Any
    reply_override: dict[str, Any] | None = None
    chunk_delay: float = 0.0
    close_after: int | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    """A route served by a vendor."""

    method: str
    path: str
    handler: Handler


def sse_event(data: Any, event: str | None = None) -> bytes:
    """Encode one server-sent event; ``data`` is JSON-encoded unless it is bytes."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def next_request_id(prefix: str) -> str:
    """Return a process-unique request id such as ``req_000001``."""
    return f"{prefix}{next(_request_counter):06d}"


async def write_chunks(
    request: web.Request,
    chunks: Iterable[bytes],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    chunk_delay: float = 0.0,
    close_after: int | None = None,
) -> web.StreamResponse:
    """Send the chunks as one streamed response, each chunk in its own write.

    With ``close_after`` the connection is aborted after that many chunks, which the
    client sees as a body that ends before the chunked encoding's last chunk.
    """
    response = web.StreamResponse(status=status, headers=headers)
    if response.content_type == "application/octet-stream":
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
    await response.prepare(request)

    for position, chunk in enumerate(chunks):
        if close_after is not None and position >= close_after:
            break
        if chunk_delay and position:
            await asyncio.sleep(chunk_delay)
        await response.write(chunk)

    if close_after is not None:
        abort_connection(request)
        return response
    await response.write_eof()
    return response


def abort_connection(request: web.Request) -> None:
    """Close the client connection at once, without finishing the response."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class Vendor:
    """One vendor's routes, authentication and error format.

    Subclasses set ``name`` (the key used for expected API keys and in the vendor
    registry) and implement ``endpoints``. The base ``authenticate`` accepts every
    request, and the base error body is ``{"error": {"type": ..., "message": ...}}``,
    which is also what paths without a vendor use.
    """

    name: ClassVar[str] = "generic"
    request_id_header: ClassVar[str] = "x-request-id"
    request_id_prefix: ClassVar[str] = "req_"

    def endpoints(self) -> list[Endpoint]:
        """Return the routes this vendor serves."""
        return []

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Return an error response when the request's credentials are rejected."""
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return the vendor's JSON error object; vendors without codes drop ``code``."""
        return {"error": {"type": error_type, "message": message}}

    def error_response(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> web.Response:
        """Return an error response in the vendor's own format."""
        body = self.error_body(error_type, message, code)
        return self.json_response(body, status, headers)

    def json_response(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """Return a JSON response carrying the vendor's request id header."""
        response = web.Response(
            body=orjson.dumps(data), status=status, content_type=JSON_CONTENT_TYPE
        )
        response.headers[self.request_id_header] = next_request_id(
            self.request_id_prefix
        )
        if headers:
            response.headers.update(headers)
        return response

    async def stream(self, call: Call, events: Iterable[bytes]) -> web.StreamResponse:
        """Stream server-sent events, honouring the call's delay and close options."""
        headers = {
            "Content-Type": SSE_CONTENT_TYPE,
            "Cache-Control": "no-cache",
            self.request_id_header: next_request_id(self.request_id_prefix),
            **call.response_headers,
        }
        return await write_chunks(
            call.request,
            events,
            headers=headers,
            chunk_delay=call.chunk_delay,
            close_after=call.close_after,
        )

    def reject_body(self, call: Call, *required: str) -> web.Response | None:
        """Return a 400 error unless the body is a JSON object with the required keys."""
        if not isinstance(call.body, dict):
            return self.error_response(
                400, "invalid_request_error", "The request body is not a JSON object."
            )
        for key in required:
            if key not in call.body:
                return self.error_response(
                    400, "invalid_request_error", f"{key}: Field required."
                )
        return None
