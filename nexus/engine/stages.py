"""Pipeline stages around the upstream call.

The gateway runs every stage's on_request in order after the model is resolved and
before any upstream call, then every on_complete in reverse order once the answer
ended, whatever the outcome. Quotas, hooks, kill switches and the cache each
provide one stage; the defaults do nothing.
"""

from collections.abc import AsyncIterator
from typing import Any

from nexus.engine.call import Call
from nexus.engine.canonical import ChatResult
from nexus.engine.errors import NexusError


class ChunkSource:
    """An answer whose canonical chunks arrive over time, such as a shared stream.

    on_request may return one instead of a ChatResult. For a streaming request the
    gateway writes each chunk to the caller as chunks() yields it, and a NexusError
    raised by chunks() ends the stream with an error event; for a non-streaming
    request it sends the ChatResult that result() returns.
    """

    def chunks(self) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    async def result(self) -> ChatResult:
        raise NotImplementedError


class ResponseFilter:
    """Inspect or rewrite an answer on its way to the caller.

    For a streamed answer the gateway passes each canonical chunk through filter_chunk
    and then calls flush once at the end, so a filter may hold back text (a window)
    and release it later. A filter ends a stream early by raising a NexusError.
    """

    def filter_result(self, result: ChatResult) -> ChatResult:
        return result

    def filter_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        return [chunk]

    def flush(self) -> list[dict[str, Any]]:
        return []

    async def abort(self, error: NexusError) -> None:
        return None


class Stage:
    """One step of the request pipeline; override only what the step needs."""

    name = "stage"

    async def on_request(
        self, call: Call, request: Any
    ) -> ChatResult | ChunkSource | None:
        """Check or change the request; raise a NexusError to stop it.

        Returning a ChatResult or a ChunkSource answers the request without an
        upstream call (a cache hit, or a stream shared with an identical request);
        later stages' on_request then do not run.
        """
        return None

    def response_filter(self, call: Call, request: Any) -> ResponseFilter | None:
        """Return a filter for this request's answer, or None to leave it alone."""
        return None

    async def on_complete(self, call: Call, request: Any) -> None:
        """Settle what on_request started; runs for every request that reached the stage.

        `call.complete` is True when the provider's response was complete, and
        `call.usage` holds what was produced, even for a cut-off stream.
        """

    async def close(self) -> None:
        """Release resources when the gateway stops."""
