"""One HTTP exchange on the raw ASGI interface: reading the body and answering.

The traffic endpoints bypass Django's request machinery, so this module does the
little of it they need: header limits, a bounded body read and JSON answers.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from nexus.engine.errors import RequestTimeoutError, RequestTooLargeError

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ClientDisconnected(Exception):
    """The caller closed the connection before the answer was complete."""


class Exchange:
    """The request side of one call and the helpers that write its answer."""

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        self.started = False
        self.finished = False
        self.status = 0
        self.disconnected = False

    @property
    def header_bytes(self) -> int:
        return sum(
            len(name) + len(value) + 4 for name, value in self.scope.get("headers", ())
        )

    @property
    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None

    async def read_body(self, limit: int, timeout: float) -> bytes:
        """Read the whole body, rejecting it with 413 as soon as it passes limit."""
        declared = self.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLargeError(
                f"The request body is {declared} bytes; the limit is {limit} bytes."
            )
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.receive()
                    if message["type"] == "http.disconnect":
                        self.disconnected = True
                        raise ClientDisconnected()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise RequestTooLargeError(
                            f"The request body is over the limit of {limit} bytes."
                        )
                    parts.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise RequestTimeoutError(
                f"The request body did not arrive within {timeout:g} s."
            ) from None
        return b"".join(parts)

    async def start(
        self, status: int, headers: dict[str, str], content_type: str
    ) -> None:
        raw = [(b"content-type", content_type.encode())]
        raw.extend(
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        )
        self.status = status
        self.started = True
        await self._send(
            {"type": "http.response.start", "status": status, "headers": raw}
        )

    async def write(self, data: bytes, *, more: bool = True) -> None:
        await self._send(
            {"type": "http.response.body", "body": data, "more_body": more}
        )

    async def json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        """Send a complete JSON answer."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        all_headers = dict(headers or {})
        all_headers["content-length"] = str(len(body))
        await self.start(status, all_headers, "application/json")
        await self.write(body, more=False)

    async def wait_for_disconnect(self) -> None:
        """Return when the caller disconnects; used to cancel a running stream."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return
