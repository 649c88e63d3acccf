"""Script a fake provider that runs in another process, through its control API."""

import logging
import urllib.request
from typing import Any

import orjson

from nexus.fakeprovider.recorder import RecordedRequest

logger = logging.getLogger(__name__)

TIMEOUT = 10.0


class FakeProviderClient:
    """The ``FakeProvider`` scripting methods over HTTP, for a server at ``url``.

    Scripted responses travel as JSON, so ``chunks``, ``sse`` and ``body`` must be
    strings here.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def enqueue(self, path_suffix: str | None, response: dict[str, Any]) -> None:
        """Queue a scripted response; the server rejects a malformed one with 400."""
        self._call(
            "POST", "/_fake/enqueue", {"path": path_suffix, "response": response}
        )

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests the server recorded, oldest first."""
        data = self._call("GET", "/_fake/requests")
        return [RecordedRequest.from_dict(item) for item in data["requests"]]

    @property
    def pending(self) -> int:
        """The number of scripted responses not yet consumed."""
        return self._call("GET", "/_fake/health")["pending"]

    def reset(self) -> None:
        """Clear requests, scripts and key changes, and close hung connections."""
        self._call("POST", "/_fake/reset")

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else orjson.dumps(payload)
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return orjson.loads(response.read())
