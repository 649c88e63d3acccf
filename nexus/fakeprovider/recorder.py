"""Record the requests the fake provider receives, for tests to inspect."""

import base64
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedRequest:
    """One received request; header names are lowercased.

    ``json`` is the parsed body, or None when the body is empty or not JSON.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; the raw body is base64 under ``body_b64``."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
            "body_b64": base64.b64encode(self.body).decode(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RecordedRequest":
        """Build a request from the output of ``to_dict``."""
        return cls(
            method=data["method"],
            path=data["path"],
            query=data["query"],
            headers=data["headers"],
            json=data["json"],
            body=base64.b64decode(data["body_b64"]),
        )


def parse_json(body: bytes) -> Any:
    """Return the parsed JSON body, or None when it is empty or not valid JSON."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class Recorder:
    """Thread-safe store of the latest requests.

    ``max_requests`` bounds memory in long benchmark runs: older requests are
    dropped first, None keeps all of them and 0 records nothing.
    """

    def __init__(self, max_requests: int | None = None) -> None:
        self._requests: deque[RecordedRequest] = deque(maxlen=max_requests)
        self._enabled = max_requests != 0
        self._lock = threading.Lock()

    def record(self, request: web.Request, body: bytes, parsed: Any) -> None:
        """Store the request with its raw and parsed body."""
        if not self._enabled:
            return
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            json=parsed,
            body=body,
        )
        with self._lock:
            self._requests.append(recorded)

    def list(self) -> list[RecordedRequest]:
        """Return the stored requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget every stored request."""
        with self._lock:
            self._requests.clear()
