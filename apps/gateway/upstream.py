"""Calling the planned targets and delivering the answer to the caller.

Retryable failures before the first byte move on through the plan (retries with
backoff, then the next target). A failure after the first streamed byte ends the
stream with an error event in the caller's format; it is never turned into a
normal finish, and `call.complete` stays False so nothing caches or bills it as
complete.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from django.conf import settings

from apps.gateway.exchange import Exchange
from apps.gateway.runtime import GatewayRuntime
from nexus.engine.call import Call
from nexus.engine.canonical import ChatRequest, ChatResult, result_to_chunks
from nexus.engine.errors import (
    NexusError,
    ProviderError,
    ProviderProtocolError,
    ProviderTimeoutError,
    ProviderUnreachableError,
)
from nexus.engine.ingress.base import Ingress
from nexus.engine.routing.outcomes import parse_retry_after
from nexus.engine.stages import ChunkSource, ResponseFilter
from nexus.engine.targets import Plan, Target

logger = logging.getLogger(__name__)


async def serve_chat(
    exchange: Exchange,
    runtime: GatewayRuntime,
    ingress: Ingress,
    call: Call,
    request: ChatRequest,
    body: Any,
    plan: Plan,
    filters: list[ResponseFilter],
) -> None:
    """Try the plan's targets until one responds, then deliver its response."""

    async def run_attempt(target: Target, delay: float | None) -> None:
        native = (
            not filters
            and not call.state.get("request_modified")
            and target.adapter.accepts_native(ingress.format)
        )
        await _attempt(
            exchange,
            runtime,
            ingress,
            call,
            request,
            body,
            plan,
            target,
            native,
            filters,
            delay,
        )

    await try_targets(exchange, call, plan, run_attempt)


async def try_targets(
    exchange: Exchange,
    call: Call,
    plan: Plan,
    run_attempt: Callable[[Target, float | None], Awaitable[None]],
) -> None:
    """Run attempts on the plan's targets, with retries and failover, until one succeeds.

    run_attempt(target, delay) sends one request to target and its result to the
    caller, or raises ProviderError. It adds its record to call.details["attempts"]
    with attempt_record (start offset from the request start, backoff wait before
    it) and reports its outcome to the router's record(). A retryable error, or one
    with a status in the route's failover_statuses, moves on after the retry
    backoff unless the response to the caller has started.
    """
    last_error: ProviderError | None = None
    attempts: list[dict[str, Any]] = call.details.setdefault("attempts", [])
    try:
        for target in plan.targets:
            call.model, call.connection = target.model, target.connection
            retries = plan.retries_for(target)
            delay = 0.0
            for attempt in range(retries + 1):
                try:
                    await run_attempt(target, delay)
                    return
                except ProviderError as error:
                    movable = error.retryable or error.status in plan.failover_statuses
                    if exchange.started or not movable:
                        raise
                    last_error = error
                    delay = None
                    if error.retryable and attempt < retries:
                        delay = plan.retry_delay(attempt, error.retry_after)
                    if delay is None:
                        break
                    await asyncio.sleep(delay)
        assert last_error is not None
        raise last_error
    finally:
        label_answer(call, plan, attempts)


def label_answer(call: Call, plan: Plan, attempts: list[dict[str, Any]]) -> None:
    """Set the answer's x-nexus-attempts header, and x-nexus-route when a route matched."""
    call.response_headers["x-nexus-attempts"] = str(len(attempts))
    if plan.route:
        call.response_headers["x-nexus-route"] = plan.route


async def _attempt(
    exchange,
    runtime,
    ingress,
    call,
    request,
    body,
    plan,
    target,
    native,
    filters,
    delay,
) -> None:
    """Send one attempt to target and deliver its response, or raise ProviderError.

    A stream that fails before any of it reached the caller raises too, so the plan
    can move on. Once bytes went out, the stream ends with an error event instead.
    """
    started = time.perf_counter()
    record = attempt_record(call, target, started, delay)
    timeout = plan.timeout_for(target, settings.NEXUS_UPSTREAM_TIMEOUT)
    try:
        response, raw = await _fetch(
            runtime, target, request, body, native, timeout, stream=request.stream
        )
        elapsed = (time.perf_counter() - started) * 1000
        record.update(status=response.status, ms=round(elapsed, 2))
        label_answer(call, plan, call.details["attempts"])
        if raw is not None:
            await _complete(
                exchange, ingress, call, target, request, raw, native, filters
            )
            failure = None
        else:
            async with response:
                failure = await _stream(
                    exchange,
                    ingress,
                    call,
                    target,
                    request,
                    response,
                    native,
                    filters,
                    timeout,
                )
    except ProviderError as error:
        record_failure(runtime, target, record, started, error)
        raise
    # A stream cut after its first chunk reached the caller counts against the target.
    cut = failure if isinstance(failure, ProviderError) else None
    if cut is not None:
        record["error"] = cut.code
    runtime.router.record(
        target,
        ok=cut is None,
        latency_ms=elapsed,
        status=cut.status if cut else 200,
        headers=response.headers,
    )


def record_failure(
    runtime, target: Target, record: dict[str, Any], started: float, error
) -> None:
    """Note a failed attempt in its audit record and in the target's health."""
    elapsed = (time.perf_counter() - started) * 1000
    record.update(status=error.status, ms=round(elapsed, 2), error=error.code)
    runtime.router.record(
        target,
        ok=False,
        latency_ms=elapsed,
        status=error.status,
        retry_after=error.retry_after,
    )


def attempt_record(
    call: Call, target: Target, started: float, delay: float | None
) -> dict[str, Any]:
    """Add the audit record of a new attempt to call.details["attempts"]."""
    record: dict[str, Any] = {
        "provider": target.connection.name,
        "model": target.model.name,
        "status": 0,
        "ms": 0.0,
        "error": "",
        "start_ms": round((started - call.started) * 1000, 2),
        "delay_ms": round((delay or 0.0) * 1000, 2),
    }
    if target.path:
        record["path"] = target.path
    if target.arm:
        record["arm"] = target.arm
    call.details["attempts"].append(record)
    return record


async def _fetch(runtime, target, request, body, native, timeout, *, stream):
    """Open the request and, unless streaming, read the whole body, within timeout."""
    try:
        async with asyncio.timeout(timeout):
            response = await _open(runtime, target, request, body, native, timeout)
            if stream:
                return response, None
            async with response:
                return response, await read_body(response, timeout)
    except TimeoutError:
        raise ProviderTimeoutError(
            f"Provider did not respond within {timeout:g} s."
        ) from None


async def _open(
    runtime: GatewayRuntime,
    target: Target,
    request: ChatRequest,
    body: Any,
    native: bool,
    timeout: float,
):
    adapter = target.adapter
    if native:
        upstream = adapter.build_native_request(body, target.model.upstream_model)
    else:
        upstream = adapter.build_chat_request(request, target.model.upstream_model)
    await adapter.authorize(upstream)
    response = await adapter.send(runtime.client, upstream, timeout=timeout)
    if response.status >= 400:
        async with response:
            raw = await read_body(response, timeout)
        error = adapter.parse_error(response.status, raw)
        error.retry_after = parse_retry_after(response.headers)
        raise error
    return response


async def read_body(response, timeout: float | None = None) -> bytes:
    """Read a whole upstream body within timeout (default: the upstream timeout)."""
    try:
        async with asyncio.timeout(timeout or settings.NEXUS_UPSTREAM_TIMEOUT):
            return await response.read()
    except TimeoutError:
        raise ProviderTimeoutError(
            "Provider response timed out before the body was complete."
        ) from None
    except OSError as exc:
        raise ProviderProtocolError(
            f"Provider connection failed while reading the answer: {type(exc).__name__}."
        ) from None
    except Exception as exc:
        if _is_transport_error(exc):
            raise ProviderProtocolError(
                f"Provider connection failed while reading the answer: {type(exc).__name__}."
            ) from None
        raise


def _is_transport_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiohttp")


async def _complete(
    exchange, ingress, call, target, request, raw, native, filters
) -> None:
    call.mark_first_byte()
    if native:
        parsed = orjson.loads(raw)
        call.usage = target.adapter.usage_from_native(parsed)
        parsed["model"] = request.model
        call.state["native_answer"] = parsed
        payload = orjson.dumps(parsed)
    else:
        result = target.adapter.parse_chat_response(raw, request)
        call.usage = result.usage
        for response_filter in filters:
            result = response_filter.filter_result(result)
        call.state["result"] = result
        payload = orjson.dumps(ingress.encode_chat(result, request))
    call.complete = True
    call.status = 200
    await exchange.json(200, payload, call.answer_headers())


async def _stream(
    exchange, ingress, call, target, request, response, native, filters, timeout
) -> NexusError | None:
    """Relay a stream; return the error that ended it early, if one did.

    The caller's response starts with the first bytes to send, so a provider that
    fails before producing any chunk raises its ProviderError instead.
    """
    call.status = 200
    headers = call.answer_headers()
    headers["cache-control"] = "no-cache"
    encoder = ingress.chat_stream_encoder(request)
    pump = _Pump(exchange, call, encoder, response, headers, timeout, filters)
    if native:
        observer = target.adapter.native_stream_observer()
        call.state["native_observer"] = observer

        def passthrough(data: bytes) -> list[bytes]:
            observer.feed(data)
            pump.produced = True
            return [data]

        # The provider's own stream already carries its end events.
        return await pump.run(observer, passthrough, list, bytes)
    decoder = target.adapter.chat_stream_decoder(request)
    collected: list[dict[str, Any]] = []
    call.state["chunks"] = collected

    def convert(data: bytes) -> list[bytes]:
        chunks = decoder.feed(data)
        pump.produced = pump.produced or bool(chunks)
        return [
            encoder.encode(chunk) for chunk in _filtered(chunks, filters, collected)
        ]

    def finish() -> list[bytes]:
        tail = _filtered(decoder.finish(), filters, collected)
        tail.extend(_flushed(filters, collected))
        return [encoder.encode(chunk) for chunk in tail]

    return await pump.run(decoder, convert, finish, encoder.finish)


def _filtered(
    chunks: list[dict[str, Any]], filters: list[ResponseFilter], collected: list
) -> list[dict[str, Any]]:
    for response_filter in filters:
        chunks = [
            out for chunk in chunks for out in response_filter.filter_chunk(chunk)
        ]
    collected.extend(chunks)
    return chunks


def _flushed(filters: list[ResponseFilter], collected: list) -> list[dict[str, Any]]:
    """Release what each filter held back, through the filters after it."""
    tail: list[dict[str, Any]] = []
    for index, response_filter in enumerate(filters):
        tail.extend(_filtered(response_filter.flush(), filters[index + 1 :], collected))
    return tail


class _Pump:
    """Copy one upstream stream to the caller chunk by chunk.

    `produced` turns True once the stream yielded a chunk. Until then a provider
    failure is raised to the attempt loop, which may retry or fail over, instead of
    ending the caller's stream. The first data must arrive within `timeout` seconds.
    """

    def __init__(
        self, exchange, call, encoder, response, headers, timeout, filters
    ) -> None:
        self.exchange = exchange
        self.call = call
        self.encoder = encoder
        self.response = response
        self.headers = headers
        self.timeout = timeout
        self.filters = filters
        self.produced = False

    async def run(self, tracker, convert, finish, trailer) -> NexusError | None:
        """Relay the stream; tracker records usage and whether it ended properly."""
        call = self.call
        try:
            async for data in self._data():
                out = b"".join(convert(data))
                if out:
                    call.mark_first_byte()
                    await self._write(out)
            out = b"".join(finish())
            if not tracker.finished and not self.produced:
                raise ProviderUnreachableError(
                    "Provider closed the stream before sending any event."
                )
            if not tracker.finished:
                raise ProviderProtocolError(
                    "Provider stream ended before the response was complete."
                )
            call.complete = True
            await self._write(out + trailer(), more=False)
            return None
        except Exception as exc:
            error = _stream_error(exc)
            if error is None:
                raise
            if not self.produced and not self.exchange.started:
                if not isinstance(exc, NexusError):
                    # A connection lost before any event is retried like a refused one.
                    error = ProviderUnreachableError(
                        "The provider's connection broke before its first event."
                    )
                if isinstance(error, ProviderError):
                    raise error from None
            call.error_code = error.code
            for response_filter in self.filters:
                await response_filter.abort(error)
            await self._write(self.encoder.error(error), more=False)
            return error
        finally:
            call.usage = tracker.usage

    async def _data(self):
        stream = self.response.content.iter_any()
        try:
            async with asyncio.timeout(self.timeout):
                first = await anext(stream, None)
        except TimeoutError:
            raise ProviderTimeoutError(
                f"Provider sent no stream data within {self.timeout:g} s."
            ) from None
        if first is None:
            return
        yield first
        async for data in stream:
            yield data

    async def _write(self, data: bytes, more: bool = True) -> None:
        if not self.exchange.started:
            await self.exchange.start(200, self.headers, "text/event-stream")
        await self.exchange.write(data, more=more)


def _stream_error(exc: Exception) -> NexusError | None:
    if isinstance(exc, NexusError):
        return exc
    if isinstance(exc, (TimeoutError, OSError)) or _is_transport_error(exc):
        # The exception's class helps an operator, not the caller; it goes to the log.
        logger.warning("provider stream broke off: %s", type(exc).__name__)
        return ProviderProtocolError("The provider's stream broke off before its end.")
    return None


async def replay(
    exchange: Exchange,
    ingress: Ingress,
    call: Call,
    request: ChatRequest,
    result: ChatResult | ChunkSource,
    filters: list[ResponseFilter] = (),
) -> None:
    """Send a stored result (a cache hit) or a shared stream as JSON or SSE.

    The response filters run on it as on a fresh response, so hooks saved after a
    response was cached still apply. A stored result is filtered whole before the
    first byte goes out, so a block gets an error status.
    """
    if isinstance(result, ChunkSource):
        if request.stream:
            await _replay_chunks(exchange, ingress, call, request, result, filters)
            return
        result = await result.result()
    call.usage = result.usage
    if not request.stream:
        for response_filter in filters:
            result = response_filter.filter_result(result)
        call.complete = True
        call.status = 200
        call.mark_first_byte()
        await exchange.json(
            200, ingress.encode_chat(result, request), call.answer_headers()
        )
        return
    chunks = _filtered(result_to_chunks(result), filters, [])
    chunks.extend(_flushed(filters, []))
    encoder = ingress.chat_stream_encoder(request)
    out = b"".join(encoder.encode(chunk) for chunk in chunks)
    call.complete = True
    call.status = 200
    call.mark_first_byte()
    headers = call.answer_headers()
    headers["cache-control"] = "no-cache"
    await exchange.start(200, headers, "text/event-stream")
    await exchange.write(out + encoder.finish(), more=False)


async def _replay_chunks(
    exchange: Exchange,
    ingress: Ingress,
    call: Call,
    request: ChatRequest,
    source: ChunkSource,
    filters: list[ResponseFilter],
) -> None:
    """Write each chunk of the source as it arrives; its usage is the stage's concern."""
    call.status = 200
    encoder = ingress.chat_stream_encoder(request)
    headers = call.answer_headers()
    headers["cache-control"] = "no-cache"
    await exchange.start(200, headers, "text/event-stream")
    try:
        async for chunk in source.chunks():
            out = b"".join(encoder.encode(c) for c in _filtered([chunk], filters, []))
            if out:
                call.mark_first_byte()
                await exchange.write(out)
        tail = b"".join(encoder.encode(c) for c in _flushed(filters, []))
    except NexusError as error:
        call.error_code = error.code
        await exchange.write(encoder.error(error), more=False)
        return
    call.complete = True
    await exchange.write(tail + encoder.finish(), more=False)
