"""The cache around one request: exact lookup, coalescing, semantic lookup, storing.

Order on the way in: the exact cache, then joining an identical request in flight,
then the semantic index. A request that finds nothing leads the upstream call. A response
filter captures its response (and fans the chunks out to the followers), and the
response is stored once complete. Hits and followers make no upstream call: their
usage columns stay zero and `details.cache.saved` holds what the answer cost.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.exceptions import RedisError

from nexus.engine.cache.breaker import CircuitBreaker
from nexus.engine.cache.config import (
    CacheConfig,
    CachePolicy,
    SemanticSettings,
    tenant_scope,
)
from nexus.engine.cache.entries import CachedResponse, assemble, rejection_reason
from nexus.engine.cache.flight import Flight, FlightTable, Outcome
from nexus.engine.cache.keys import (
    KeyContext,
    SemanticQuery,
    exact_key,
    passthrough_only,
    semantic_exclusion,
    semantic_query,
)
from nexus.engine.cache.replay import (
    CoalescedUpstreamError,
    FlightStream,
    flight_answer,
)
from nexus.engine.cache.semantic import Lookup, SemanticIndex, entry_expiry
from nexus.engine.cache.store import ExactStore
from nexus.engine.cache.vectors.base import VectorEntry
from nexus.engine.call import Call
from nexus.engine.canonical import ChatRequest, ChatResult, Usage
from nexus.engine.errors import InvalidRequestError, NexusError
from nexus.engine.pricing import cost_nano
from nexus.engine.stages import ChunkSource, ResponseFilter

logger = logging.getLogger(__name__)

HEADER = "x-nexus-cache"
MODES = ("bypass", "refresh")
SERVED = ("hit", "semantic_hit", "coalesced")
# A failing store means a miss: timeouts, lost connections and protocol errors.
STORE_FAILURES = (RedisError, OSError, TimeoutError)
# How often a follower whose leader went away tries to lead or join anew.
FOLLOW_ATTEMPTS = 3

IndexFactory = Callable[[SemanticSettings], SemanticIndex]


@dataclass
class CacheRequest:
    """Per-request cache state, kept in call.state["cache"]."""

    policy: CachePolicy
    context: KeyContext
    key: str
    org_id: int
    mode: str = ""
    # miss, hit, semantic_hit, coalesced, bypass or refresh
    outcome: str = "miss"
    answer: CachedResponse | None = None
    similarity: float | None = None
    flight: Flight | None = None
    leader: bool = False
    # Why the response to this request must not be stored (bypass, quarantined).
    store_blocked: str = ""
    stored: bool = False
    not_stored: str = ""
    # Tokens and cost of a response served without an upstream call.
    saved: dict[str, int] | None = None
    semantic: dict[str, Any] = field(default_factory=dict)
    query: SemanticQuery | None = None
    lookup: Lookup | None = None
    index: SemanticIndex | None = None
    # The answer as it left the response filters: one body, or stream chunks.
    result_body: bytes | None = None
    chunks: list[bytes] = field(default_factory=list)


class CaptureFilter(ResponseFilter):
    """Record the response for storing and fan each chunk out to the followers.

    Runs last, so it receives the response as the caller gets it. Chunks are serialized
    here because encoders change the dicts they are given.
    """

    def __init__(self, state: CacheRequest, flights: FlightTable) -> None:
        self.state = state
        self.flights = flights
        self.flight = state.flight if state.leader else None

    def filter_result(self, result: ChatResult) -> ChatResult:
        self.state.result_body = orjson.dumps(result.body)
        return result

    def filter_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        data = orjson.dumps(chunk)
        self.state.chunks.append(data)
        if self.flight is not None:
            self.flight.publish(data)
        return [chunk]

    async def abort(self, error: NexusError) -> None:
        # Ended before the caller sees the error: an identical request sent right
        # after it starts a new upstream call instead of sharing this failure.
        if self.flight is not None:
            outcome = Outcome("failed", error_code=error.code, http_status=error.status)
            await self.flights.end_published(self.flight, outcome)


class CacheLayer:
    """Exact cache, coalescing and semantic cache for the chat endpoints."""

    def __init__(
        self,
        *,
        store: ExactStore,
        flights: FlightTable,
        config: Callable[[], CacheConfig | None],
        index_factory: IndexFactory,
        follower_wait: float = 600.0,
        store_timeout: float = 0.5,
    ) -> None:
        self.store = store
        self.flights = flights
        self.config = config
        self.index_factory = index_factory
        self.follower_wait = follower_wait
        self.store_timeout = store_timeout
        self.store_breaker = CircuitBreaker("exact-cache", threshold=5, cool_down=10)
        self.indexes: dict[str, SemanticIndex] = {}
        self.tasks: set[asyncio.Task] = set()
        self.seen_config: CacheConfig | None = None

    async def on_request(
        self, call: Call, request: Any
    ) -> ChatResult | ChunkSource | None:
        state = self._begin(call, request)
        if state is None or state.mode:
            return None
        if state.policy.exact and not state.store_blocked:
            answer = await self._exact_get(state.key)
            if answer is not None:
                return self._serve(call, state, answer, "hit")
        if state.policy.coalesce:
            served = await self._coalesce(call, request, state)
            if served is not None:
                return served
        if state.policy.semantic is not None:
            answer = await self._semantic_lookup(call, request, state)
            if answer is not None:
                if state.leader and state.flight is not None:
                    self.flights.end(
                        state.flight, Outcome("complete", answer.to_bytes())
                    )
                return self._serve(call, state, answer, "semantic_hit")
        call.response_headers[HEADER] = "miss"
        return None

    def _begin(self, call: Call, request: Any) -> CacheRequest | None:
        """Return the cache state of the request, or None when no cache applies."""
        config = self.config()
        if (
            config is None
            or not isinstance(request, ChatRequest)
            or call.key is None
            or call.model is None
            or call.connection is None
        ):
            return None

        self._apply(config)
        policy = config.policy_for(call.key, call.model.name)
        if policy is None or not policy.active:
            return None
        if "cache" in (call.state.get("bypass") or ()):
            call.details["cache"] = {"outcome": "passthrough"}
            return None
        if passthrough_only(request):
            call.details["cache"] = {"outcome": "not_cacheable"}
            return None

        context = KeyContext(
            scope=tenant_scope(call.key, policy.share),
            generation=config.generation(call.key.org_id),
            model=call.model.name,
            upstream_model=call.model.upstream_model,
            connection_id=call.connection.id,
        )
        state = CacheRequest(
            policy=policy,
            context=context,
            key=exact_key(context, request),
            org_id=call.key.org_id,
            mode=self._mode(call, policy),
        )

        call.state["cache"] = state
        call.response_headers["x-nexus-cache-entry"] = state.key
        if state.key in config.quarantined:
            state.store_blocked = "quarantined"
        if state.mode:
            state.outcome = state.mode
            call.response_headers[HEADER] = state.mode
            if state.mode == "bypass":
                state.store_blocked = "bypass"
        return state

    @staticmethod
    def _mode(call: Call, policy: CachePolicy) -> str:
        value = call.headers.get(HEADER, "").strip().lower()
        if not value or not policy.honor_headers:
            return ""
        if value not in MODES:
            raise InvalidRequestError(
                f"Header {HEADER} must be bypass or refresh, got {value[:40]!r}."
            )
        return value

    def _serve(
        self, call: Call, state: CacheRequest, answer: CachedResponse, outcome: str
    ) -> ChatResult:
        state.answer = answer
        state.outcome = outcome
        call.response_headers[HEADER] = outcome.replace("_", "-")
        call.response_headers["x-nexus-cache-entry"] = answer.entry_id
        age = max(0, int(time.time() - answer.created_at))
        call.response_headers["x-nexus-cache-age"] = str(age)
        if state.similarity is not None:
            call.response_headers["x-nexus-cache-similarity"] = (
                f"{state.similarity:.4f}"
            )
        return answer.result()

    async def _exact_get(self, key: str) -> CachedResponse | None:
        if not self.store_breaker.allow():
            return None
        try:
            async with asyncio.timeout(self.store_timeout):
                raw = await self.store.get(key)
        except STORE_FAILURES as exc:
            self.store_breaker.failure()
            logger.warning("exact cache read failed: %s", type(exc).__name__)
            return None
        self.store_breaker.success()
        return CachedResponse.from_bytes(raw) if raw is not None else None

    async def _exact_set(self, key: str, answer: CachedResponse, ttl: int) -> bool:
        if not self.store_breaker.allow():
            return False
        try:
            async with asyncio.timeout(self.store_timeout):
                await self.store.set(key, answer.to_bytes(), ttl)
        except STORE_FAILURES as exc:
            self.store_breaker.failure()
            logger.warning("exact cache write failed: %s", type(exc).__name__)
            return False
        self.store_breaker.success()
        return True

    async def _coalesce(
        self, call: Call, request: ChatRequest, state: CacheRequest
    ) -> ChatResult | ChunkSource | None:
        """Lead a new flight (return None) or follow a running one."""
        for _ in range(FOLLOW_ATTEMPTS):
            flight = self.flights.join(state.key)
            if flight is None:
                flight = self.flights.lead(state.key, call.request_id)
                state.flight, state.leader = flight, True
                if await self.flights.claim(flight):
                    return None
                state.leader = False
            state.flight = flight
            served = await self._follow(call, request, state, flight)
            if served is not None:
                return served
            state.flight = None
        return None

    async def _follow(
        self, call: Call, request: ChatRequest, state: CacheRequest, flight: Flight
    ) -> ChatResult | ChunkSource | None:
        """Wait for the leader; return None if it went away before any answer."""
        deadline = time.monotonic() + self.follower_wait
        while not flight.done and not (request.stream and flight.chunks):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            await flight.changed(len(flight.chunks), remaining)
        outcome = flight.outcome
        if outcome is not None and outcome.status == "abandoned":
            return None
        state.outcome = "coalesced"
        call.response_headers[HEADER] = "coalesced"
        if outcome is not None and outcome.status == "failed":
            raise CoalescedUpstreamError(flight)
        if request.stream and flight.chunks:
            return FlightStream(flight, self.follower_wait)
        answer = flight_answer(flight)
        if answer is None:
            raise CoalescedUpstreamError(flight)
        return answer.result()

    async def _semantic_lookup(
        self, call: Call, request: ChatRequest, state: CacheRequest
    ) -> CachedResponse | None:
        settings = state.policy.semantic
        assert settings is not None
        exclusion = semantic_exclusion(request, state.policy.semantic_rules)
        if exclusion:
            state.semantic = {"outcome": "skipped", "reason": exclusion}
            return None
        index = self._index(settings)
        query = semantic_query(state.context, request)
        lookup = await index.lookup(query, time.time())
        state.index, state.query, state.lookup = index, query, lookup
        state.semantic = {"outcome": lookup.outcome, "index": settings.index}
        if lookup.reason:
            state.semantic["reason"] = lookup.reason
        match = lookup.match
        if match is None:
            return None
        state.semantic["similarity"] = round(match.similarity, 4)
        config = self.config()
        if config is not None and match.entry_id in config.quarantined:
            state.semantic["outcome"] = "quarantined"
            self._spawn(index.forget(match.entry_id))
            return None
        answer = CachedResponse.from_bytes(match.payload)
        if answer is not None:
            state.similarity = match.similarity
        return answer

    def _index(self, settings: SemanticSettings) -> SemanticIndex:
        index = self.indexes.get(settings.index)
        if index is None or index.settings.identity != settings.identity:
            index = self.index_factory(settings)
            self.indexes[settings.index] = index
        else:
            index.configure(settings)
        return index

    def response_filter(self, call: Call, request: Any) -> ResponseFilter | None:
        state = call.state.get("cache")
        if not isinstance(state, CacheRequest) or state.outcome in SERVED:
            return None
        return CaptureFilter(state, self.flights)

    async def on_complete(self, call: Call, request: Any) -> None:
        state = call.state.get("cache")
        if not isinstance(state, CacheRequest):
            return
        try:
            if state.outcome in SERVED:
                self._account_saved(call, state)
            else:
                await self._settle(call, state)
        finally:
            flight = state.flight
            if flight is not None and state.leader and not flight.done:
                self.flights.end(flight, Outcome("abandoned"))
            call.details["cache"] = self._details(state)

    def _account_saved(self, call: Call, state: CacheRequest) -> None:
        """Zero the usage of an answer served without an upstream call."""
        answer = state.answer
        if answer is None and state.flight is not None:
            answer = state.answer = flight_answer(state.flight)
        saved = answer.usage if answer is not None else Usage()
        call.usage = Usage()
        prices = call.model.prices if call.model is not None else None
        state.saved = {
            "input_tokens": saved.input_tokens,
            "output_tokens": saved.output_tokens,
            "cached_tokens": saved.cached_tokens,
            "cost_nano_usd": cost_nano(saved, prices) if prices else 0,
        }

    async def _settle(self, call: Call, state: CacheRequest) -> None:
        """Store a complete answer of a leader or lone request and end its flight."""
        answer, rejected = self._captured(call, state)
        policy = state.policy
        if answer is not None and not rejected and not state.store_blocked:
            if policy.exact:
                state.stored = await self._exact_set(
                    state.key, answer, policy.ttl_seconds
                )
            self._store_semantic(state, answer)
        else:
            state.not_stored = rejected or state.store_blocked
        if state.flight is not None and state.leader:
            self.flights.end(state.flight, self._outcome(call, answer))

    def _captured(
        self, call: Call, state: CacheRequest
    ) -> tuple[CachedResponse | None, str]:
        """Return the complete answer as captured, and why it must not be stored."""
        if not call.complete or call.error_code:
            return None, call.error_code or "incomplete"
        usage = dataclasses.replace(call.usage)
        if state.result_body is not None:
            body = orjson.loads(state.result_body)
        elif state.chunks:
            body = assemble([orjson.loads(c) for c in state.chunks], usage).body
        else:
            return None, "not_captured"
        answer = CachedResponse(entry_id=state.key, body=body, usage=usage)
        rejected = rejection_reason(ChatResult(body, usage))
        if not rejected and call.state.get("no_store"):
            rejected = "no_store"
        return answer, rejected or ""

    @staticmethod
    def _outcome(call: Call, answer: CachedResponse | None) -> Outcome:
        if answer is not None:
            return Outcome("complete", answer.to_bytes())
        if call.status in (0, 499) and call.error_code in ("", "client_disconnected"):
            return Outcome("abandoned")
        return Outcome("failed", error_code=call.error_code, http_status=call.status)

    def _store_semantic(self, state: CacheRequest, answer: CachedResponse) -> None:
        lookup, index, query = state.lookup, state.index, state.query
        if index is None or query is None or lookup is None:
            return
        if lookup.vector is None or lookup.spec is None:
            return
        entry = VectorEntry(
            entry_id=state.key,
            scope=query.scope,
            org_id=state.org_id,
            vector=lookup.vector,
            payload=answer.to_bytes(),
            expires_at=entry_expiry(index.settings),
        )
        self._spawn(index.store(lookup.spec, entry))
        state.semantic["stored"] = True

    def _details(self, state: CacheRequest) -> dict[str, Any]:
        details: dict[str, Any] = {"outcome": state.outcome, "key": state.key}
        if state.answer is not None:
            details["entry"] = state.answer.entry_id
        if state.similarity is not None:
            details["similarity"] = round(state.similarity, 4)
        if state.outcome == "coalesced" and state.flight is not None:
            details["leader"] = state.flight.leader_request_id
        elif state.leader and state.flight is not None:
            details["followers"] = state.flight.followers
        if state.saved is not None:
            details["saved"] = state.saved
        if state.outcome not in SERVED:
            details["stored"] = state.stored
            if state.not_stored:
                details["not_stored"] = state.not_stored
        if state.semantic:
            details["semantic"] = state.semantic
        return details

    def _apply(self, config: CacheConfig) -> None:
        """Purge semantic entries of orgs whose purge generation moved."""
        previous, self.seen_config = self.seen_config, config
        if previous is None or previous is config:
            return
        if config.global_generation != previous.global_generation:
            for index in self.indexes.values():
                self._spawn(index.purge(None))
            return
        for org_id, generation in config.generations.items():
            if previous.generations.get(org_id, 0) != generation:
                for index in self.indexes.values():
                    self._spawn(index.purge(org_id))

    def _spawn(self, work) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for background stores and purges (used by tests and shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.flights.close()
        await self.store.close()
        resources = {
            id(x): x for i in self.indexes.values() for x in (i.embedder, i.backend)
        }
        for resource in resources.values():
            await resource.close()
