"""Reading OpenAI Responses API responses that the OpenAI codec forwards unchanged.

`/v1/responses` requests to an OpenAI connection are passed through (see
OpenAIAdapter.build_native_request); the gateway still needs their usage, whether
they finished, and the final response object for `previous_response_id`.
"""

from typing import Any

import orjson

from nexus.engine.canonical import Usage
from nexus.engine.sse import Event, SSEParser

# Terminal events of a Responses stream that carry the finished response.
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete"})


def usage_from_responses(usage: Any) -> Usage:
    """Read a Responses API `usage` object; missing or malformed fields count as zero."""
    if not isinstance(usage, dict):
        return Usage()
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    return Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cached_tokens=_count(_get(input_details, "cached_tokens")),
        reasoning_tokens=_count(_get(output_details, "reasoning_tokens")),
        reported=True,
    )


class ResponsesStreamObserver:
    """Read usage, the end and the final response from a passed-through stream.

    `finished` turns True on response.completed or response.incomplete, whose
    response object lands in `response`. A response.failed or error event sets
    `error` instead, so the gateway treats the stream as cut short. The text of
    every delta event is kept, so a cut-off stream can be charged for what it sent.
    """

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.usage = Usage()
        self.finished = False
        self.response: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.produced: list[str] = []

    def produced_text(self) -> str:
        return "".join(self.produced)

    def feed(self, data: bytes) -> None:
        """Observe data; malformed events are skipped, since the caller gets the bytes anyway."""
        for event in self.parser.feed(data):
            self._observe(event)

    def finish(self) -> None:
        """Observe an event left without its closing blank line."""
        for event in self.parser.finish():
            self._observe(event)

    def _observe(self, event: Event) -> None:
        try:
            data = orjson.loads(event.data) if event.data else None
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type") or event.event
        response = data.get("response")
        if isinstance(kind, str) and kind.endswith(".delta") and "audio" not in kind:
            if isinstance(data.get("delta"), str):
                self.produced.append(data["delta"])
        elif kind in FINAL_EVENTS and isinstance(response, dict):
            self.response = response
            self.usage = usage_from_responses(response.get("usage"))
            self.finished = True
        elif kind == "response.failed" and isinstance(response, dict):
            self.error = response.get("error") or {}
        elif kind == "error":
            self.error = data


def _get(holder: Any, name: str) -> Any:
    return holder.get(name) if isinstance(holder, dict) else None


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0
