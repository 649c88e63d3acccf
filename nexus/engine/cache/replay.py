"""Responses served from a flight: the follower's chunk source and the shared error."""

from collections.abc import AsyncIterator
from typing import Any

import orjson

from nexus.engine.cache.entries import CachedResponse
from nexus.engine.cache.flight import Flight
from nexus.engine.canonical import ChatResult, result_to_chunks
from nexus.engine.errors import NexusError, ProviderProtocolError
from nexus.engine.stages import ChunkSource

ERROR_TYPES = {429: "rate_limit_error", 401: "authentication_error"}


class CoalescedUpstreamError(NexusError):
    """The upstream call a follower shared failed; the follower gets its status and code."""

    def __init__(self, flight: Flight) -> None:
        outcome = flight.outcome
        code = (outcome.error_code if outcome else "") or "upstream_error"
        super().__init__(
            f"The upstream call shared with request {flight.leader_request_id} "
            f"failed ({code}).",
            code=code,
        )
        status = outcome.http_status if outcome else 0
        self.status = status if 400 <= status <= 599 else 502
        self.type = ERROR_TYPES.get(
            self.status,
            "invalid_request_error" if self.status < 500 else "api_error",
        )


def flight_answer(flight: Flight) -> CachedResponse | None:
    """Return the complete response of a finished flight, or None."""
    outcome = flight.outcome
    if outcome is None or outcome.status != "complete" or outcome.answer is None:
        return None
    return CachedResponse.from_bytes(outcome.answer)


class FlightStream(ChunkSource):
    """A follower's view of a flight: every chunk from the first, as it arrives.

    When the leader's response was not
    streamed, the complete response is replayed as chunks at the end.
    """

    def __init__(self, flight: Flight, wait_seconds: float) -> None:
        self.flight = flight
        self.wait_seconds = wait_seconds

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        flight = self.flight
        seen = 0
        while True:
            while seen < len(flight.chunks):
                yield orjson.loads(flight.chunks[seen])
                seen += 1
            if flight.done:
                break
            await flight.changed(seen, self.wait_seconds)
            if len(flight.chunks) == seen and not flight.done:
                raise ProviderProtocolError(
                    "The shared upstream stream sent nothing in time."
                )
        answer = flight_answer(flight)
        if answer is None:
            raise CoalescedUpstreamError(flight)
        if not flight.chunks:
            for chunk in result_to_chunks(answer.result()):
                yield chunk

    async def result(self) -> ChatResult:
        flight = self.flight
        while not flight.done:
            seen = len(flight.chunks)
            await flight.changed(seen, self.wait_seconds)
            if not flight.done and len(flight.chunks) == seen:
                raise ProviderProtocolError("The shared upstream call took too long.")
        answer = flight_answer(flight)
        if answer is None:
            raise CoalescedUpstreamError(flight)
        return answer.result()
