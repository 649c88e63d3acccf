"""Calling the planned targets and delivering the answer to the caller.

Retryable failures before the first byte move on through the plan (retries with
backoff, then the next target). A failure after the first streamed byte ends the
stream with an error event in the caller's format; it is never turned into a
normal finish, and `call.complete` stays False so nothing caches or bills it as
complete.
"""

import asyncio
import logging
import random
import time
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
)
from nexus.engine.ingress.base import Ingress
from nexus.engine.stages import ResponseFilter
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
    """Try the plan's targets until one answers, then deliver its answer."""
    last_error: ProviderError | None = None
    attempts: list[dict[str, Any]] = call.details.setdefault("attempts", [])
    for target in plan.targets:
        call.model, call.connection = target.model, target.connection
        native = (
            not filters
            and not call.state.get("request_modified")
            and ingress.format == target.adapter.native_format
            and ingress.format != "openai"
        )
        for attempt in range(plan.retries + 1):
            started = time.perf_counter()
            try:
                response = await _open(runtime, target, request, body, native)
            except ProviderError as error:
                elapsed = (time.perf_counter() - started) * 1000
                attempts.append(_attempt(target, error.status, elapsed, error.code))
                runtime.router.record(
                    target, ok=False, latency_ms=elapsed, status=error.status
                )
                if not (error.retryable or error.status in plan.failover_statuses):
                    raise
                last_error = error
                if attempt < plan.retries and error.retryable:
                    await asyncio.sleep(_backoff(plan, attempt))
                    continue
                break
            elapsed = (time.perf_counter() - started) * 1000
            attempts.append(_attempt(target, response.status, elapsed, ""))
            runtime.router.record(
                target, ok=True, latency_ms=elapsed, status=response.status
            )
            call.response_headers["x-nexus-attempts"] = str(len(attempts))
            if plan.route:
                call.response_headers["x-nexus-route"] = plan.route
            async with response:
                if request.stream:
                    await _stream(
                        exchange,
                        ingress,
                        call,
                        target,
                        request,
                        response,
                        native,
                        filters,
                    )
                else:
                    await _complete(
                        exchange,
                        ingress,
                        call,
                        target,
                        request,
                        response,
                        native,
                        filters,
                    )
            return
    assert last_error is not None
    raise last_error


def _attempt(
    target: Target, status: int, elapsed_ms: float, error: str
) -> dict[str, Any]:
    return {
        "provider": target.connection.name,
        "model": target.model.name,
        "status": status,
        "ms": round(elapsed_ms, 2),
        "error": error,
    }


def _backoff(plan: Plan, attempt: int) -> float:
    # Full jitter: a random wait up to the exponential step spreads retries apart.
    return random.uniform(
        0, min(plan.max_backoff_seconds, plan.backoff_seconds * 2**attempt)
    )


async def _open(
    runtime: GatewayRuntime,
    target: Target,
    request: ChatRequest,
    body: Any,
    native: bool,
):
    adapter = target.adapter
    if native:
        upstream = adapter.build_native_request(body, target.model.upstream_model)
    else:
        upstream = adapter.build_chat_request(request, target.model.upstream_model)
    await adapter.authorize(upstream)
    response = await adapter.send(
        runtime.client, upstream, timeout=settings.NEXUS_UPSTREAM_TIMEOUT
    )
    if response.status >= 400:
        async with response:
            raw = await read_body(response)
        raise adapter.parse_error(response.status, raw)
    return response


async def read_body(response) -> bytes:
    """Read a whole upstream body within the upstream timeout."""
    try:
        async with asyncio.timeout(settings.NEXUS_UPSTREAM_TIMEOUT):
            return await response.read()
    except TimeoutError:
        raise ProviderTimeoutError(
            "Provider did not finish its answer in time."
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
    exchange, ingress, call, target, request, response, native, filters
) -> None:
    raw = await read_body(response)
    call.mark_first_byte()
    if native:
        parsed = orjson.loads(raw)
        call.usage = target.adapter.usage_from_native(parsed)
        parsed["model"] = request.model
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
    exchange, ingress, call, target, request, response, native, filters
) -> None:
    call.status = 200
    headers = call.answer_headers()
    headers["cache-control"] = "no-cache"
    await exchange.start(200, headers, "text/event-stream")
    encoder = ingress.chat_stream_encoder(request)
    if native:
        observer = target.adapter.native_stream_observer()

        def passthrough(data: bytes) -> list[bytes]:
            observer.feed(data)
            return [data]

        # The provider's own stream already carries its end events.
        await _pump(exchange, call, encoder, response, observer, passthrough, list, bytes)
        return
    decoder = target.adapter.chat_stream_decoder(request)
    collected: list[dict[str, Any]] = []
    call.state["chunks"] = collected

    def convert(data: bytes) -> list[bytes]:
        return [
            encoder.encode(chunk)
            for chunk in _filtered(decoder.feed(data), filters, collected)
        ]

    def finish() -> list[bytes]:
        tail = _filtered(decoder.finish(), filters, collected)
        for index, response_filter in enumerate(filters):
            tail.extend(
                _filtered(response_filter.flush(), filters[index + 1 :], collected)
            )
        return [encoder.encode(chunk) for chunk in tail]

    await _pump(
        exchange, call, encoder, response, decoder, convert, finish, encoder.finish
    )


def _filtered(
    chunks: list[dict[str, Any]], filters: list[ResponseFilter], collected: list
) -> list[dict[str, Any]]:
    for response_filter in filters:
        chunks = [
            out for chunk in chunks for out in response_filter.filter_chunk(chunk)
        ]
    collected.extend(chunks)
    return chunks


async def _pump(
    exchange, call, encoder, response, tracker, convert, finish, trailer
) -> None:
    """Copy a stream to the caller chunk by chunk; tracker records usage and the end."""
    try:
        async for data in response.content.iter_any():
            out = b"".join(convert(data))
            if out:
                call.mark_first_byte()
                await exchange.write(out)
        out = b"".join(finish())
        if not tracker.finished:
            raise ProviderProtocolError(
                "Provider stream ended before the answer was complete."
            )
        call.complete = True
        await exchange.write(out + trailer(), more=False)
    except Exception as exc:
        error = _stream_error(exc)
        if error is None:
            raise
        call.error_code = error.code
        await exchange.write(encoder.error(error), more=False)
    finally:
        call.usage = tracker.usage


def _stream_error(exc: Exception) -> NexusError | None:
    if isinstance(exc, NexusError):
        return exc
    if isinstance(exc, (TimeoutError, OSError)) or _is_transport_error(exc):
        return ProviderProtocolError(f"Provider stream failed: {type(exc).__name__}.")
    return None


async def replay(
    exchange: Exchange,
    ingress: Ingress,
    call: Call,
    request: ChatRequest,
    result: ChatResult,
) -> None:
    """Answer from a stored result (a cache hit) as JSON or as a stream."""
    call.usage = result.usage
    call.complete = True
    call.status = 200
    call.mark_first_byte()
    if not request.stream:
        await exchange.json(
            200, ingress.encode_chat(result, request), call.answer_headers()
        )
        return
    encoder = ingress.chat_stream_encoder(request)
    headers = call.answer_headers()
    headers["cache-control"] = "no-cache"
    await exchange.start(200, headers, "text/event-stream")
    out = b"".join(encoder.encode(chunk) for chunk in result_to_chunks(result))
    await exchange.write(out + encoder.finish(), more=False)
