"""The traffic endpoints: authenticate, decode, call the provider, answer, audit.

Nothing here touches the database: keys, models and connections come from the
in-memory snapshot, and audit events go to the background writer.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from apps.gateway.exchange import ClientDisconnected, Exchange
from apps.gateway.runtime import GatewayRuntime
from nexus.engine.access import resolve_model, visible_models
from nexus.engine.canonical import ChatRequest, Usage
from nexus.engine.errors import (
    AuthenticationError,
    InvalidRequestError,
    NexusError,
    ProviderError,
    ProviderProtocolError,
    ProviderTimeoutError,
)
from nexus.engine.ingress.base import Ingress
from nexus.engine.keys import digest_key
from nexus.engine.pricing import cost_nano
from nexus.engine.snapshot import ConnectionEntry, KeyEntry, ModelEntry

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """What one request did, collected for its audit event."""

    ingress: str
    client_ip: str | None
    request_id: str = field(default_factory=lambda: "req_" + uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    key: KeyEntry | None = None
    requested_model: str = ""
    model: ModelEntry | None = None
    connection: ConnectionEntry | None = None
    stream: bool = False
    status: int = 0
    error_code: str = ""
    ttfb_ms: float | None = None
    usage: Usage = field(default_factory=Usage)

    def mark_first_byte(self) -> None:
        if self.ttfb_ms is None:
            self.ttfb_ms = (time.perf_counter() - self.started) * 1000

    def event(self) -> dict[str, Any]:
        """Return the audit event fields for the background writer."""
        cost = cost_nano(self.usage, self.model.prices) if self.model else 0
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "organization_id": self.key.org_id if self.key else None,
            "project_id": self.key.project_id if self.key else None,
            "key_id": self.key.id if self.key else None,
            "key_prefix": self.key.prefix if self.key else "",
            "ingress": self.ingress,
            "stream": self.stream,
            "requested_model": self.requested_model,
            "model": self.model.name if self.model else "",
            "upstream_model": self.model.upstream_model if self.model else "",
            "provider": self.connection.name if self.connection else "",
            "provider_type": self.connection.provider_type if self.connection else "",
            "status_code": self.status,
            "error_code": self.error_code,
            "latency_ms": (time.perf_counter() - self.started) * 1000,
            "ttfb_ms": self.ttfb_ms,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cached_tokens": self.usage.cached_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "usage_reported": self.usage.reported,
            "cost_nano_usd": cost,
            "client_ip": self.client_ip,
        }

    def headers(self) -> dict[str, str]:
        headers = {"x-request-id": self.request_id}
        if self.connection is not None and self.model is not None:
            headers["x-nexus-provider"] = self.connection.name
            headers["x-nexus-model"] = self.model.name
        return headers


def authenticate(
    exchange: Exchange, runtime: GatewayRuntime, *, accept_x_api_key: bool
) -> KeyEntry:
    """Return the snapshot entry of the caller's virtual key, or raise 401."""
    token = ""
    authorization = exchange.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    elif accept_x_api_key:
        token = exchange.headers.get("x-api-key", "").strip()
    if not token:
        raise AuthenticationError(
            "Missing virtual key: send it as 'Authorization: Bearer <key>'."
        )
    key = runtime.snapshot.keys.get(digest_key(settings.NEXUS_KEY_HASH_SECRET, token))
    if key is None or not key.is_usable():
        raise AuthenticationError("Invalid, expired or revoked virtual key.")
    return key


async def read_json(exchange: Exchange) -> Any:
    """Read and parse the body as JSON, or raise 400, 408 or 413."""
    body = await exchange.read_body(
        settings.NEXUS_MAX_REQUEST_BYTES, settings.NEXUS_REQUEST_BODY_TIMEOUT
    )
    if not body.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"The request body is not valid JSON (UTF-8): {exc.msg} at position {exc.pos}."
        ) from None


async def until_disconnect(exchange: Exchange, work) -> None:
    """Run work; cancel it if the caller disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(exchange.wait_for_disconnect())
    try:
        done, _ = await asyncio.wait(
            {task, watcher}, return_when=asyncio.FIRST_COMPLETED
        )
        if task not in done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ClientDisconnected()
        task.result()
    finally:
        watcher.cancel()


async def serve(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call, handler
) -> None:
    """Run one endpoint handler, answering any error in the caller's wire format."""
    runtime.in_flight += 1
    try:
        await handler(exchange, runtime, ingress, call)
        call.status = call.status or exchange.status
    except ClientDisconnected:
        call.status = 499
        call.error_code = "client_disconnected"
    except NexusError as error:
        await _answer_error(exchange, ingress, call, error)
    except Exception:
        logger.exception(
            "unhandled error in %s request",
            call.ingress,
            extra={"request_id": call.request_id},
        )
        await _answer_error(
            exchange,
            ingress,
            call,
            NexusError("The gateway failed to handle the request."),
        )
    finally:
        runtime.submit_audit(call.event())
        runtime.in_flight -= 1


async def _answer_error(
    exchange: Exchange, ingress: Ingress, call: Call, error: NexusError
) -> None:
    call.status = call.status if exchange.started else error.status
    call.error_code = error.code
    if exchange.started:
        return
    headers = call.headers()
    headers.update(error.headers)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, int(retry_after + 0.999)))
    await exchange.json(error.status, ingress.error_body(error), headers)


async def chat(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """Serve a chat completion or Anthropic message, streamed or not."""
    call.key = authenticate(
        exchange, runtime, accept_x_api_key=ingress.format == "anthropic"
    )
    body = await read_json(exchange)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested_model = body["model"]
    request = ingress.decode_chat(body)
    call.stream = request.stream
    snapshot = runtime.snapshot
    call.model = resolve_model(snapshot, call.key, request.model, "chat")
    call.connection = snapshot.connection(call.model)
    adapter = runtime.adapter(call.connection.id)
    native = ingress.format == adapter.native_format and ingress.format != "openai"
    if native:
        upstream = adapter.build_native_request(body, call.model.upstream_model)
    else:
        upstream = adapter.build_chat_request(request, call.model.upstream_model)
    await adapter.authorize(upstream)
    work = (
        _stream(exchange, runtime, ingress, call, adapter, upstream, request, native)
        if request.stream
        else _complete(
            exchange, runtime, ingress, call, adapter, upstream, request, native
        )
    )
    await until_disconnect(exchange, work)


async def _open(runtime: GatewayRuntime, adapter, upstream):
    response = await runtime.client.send(
        upstream, timeout=settings.NEXUS_UPSTREAM_TIMEOUT
    )
    if response.status >= 400:
        async with response:
            body = await _read(response)
        raise adapter.parse_error(response.status, body)
    return response


async def _read(response) -> bytes:
    try:
        async with asyncio.timeout(settings.NEXUS_UPSTREAM_TIMEOUT):
            return await response.read()
    except TimeoutError:
        raise ProviderTimeoutError(
            "Provider did not finish its answer in time."
        ) from None
    except Exception as exc:
        raise ProviderProtocolError(
            f"Provider connection failed while reading the answer: {type(exc).__name__}."
        ) from None


async def _complete(
    exchange,
    runtime,
    ingress,
    call,
    adapter,
    upstream,
    request: ChatRequest,
    native: bool,
) -> None:
    response = await _open(runtime, adapter, upstream)
    async with response:
        body = await _read(response)
    call.mark_first_byte()
    if native:
        parsed = orjson.loads(body)
        call.usage = adapter.usage_from_native(parsed)
        parsed["model"] = request.model
        payload = orjson.dumps(parsed)
    else:
        result = adapter.parse_chat_response(body, request)
        call.usage = result.usage
        payload = orjson.dumps(ingress.encode_chat(result, request))
    call.status = 200
    await exchange.json(200, payload, call.headers())


async def _stream(
    exchange,
    runtime,
    ingress,
    call,
    adapter,
    upstream,
    request: ChatRequest,
    native: bool,
) -> None:
    response = await _open(runtime, adapter, upstream)
    async with response:
        call.status = 200
        headers = call.headers()
        headers["cache-control"] = "no-cache"
        await exchange.start(200, headers, "text/event-stream")
        if native:
            await _pump_native(
                exchange, call, adapter, response, ingress.chat_stream_encoder(request)
            )
        else:
            await _pump(exchange, ingress, call, adapter, request, response)


async def _pump(exchange, ingress, call, adapter, request, response) -> None:
    decoder = adapter.chat_stream_decoder(request)
    encoder = ingress.chat_stream_encoder(request)
    try:
        async for data in response.content.iter_any():
            out = b"".join(encoder.encode(chunk) for chunk in decoder.feed(data))
            if out:
                call.mark_first_byte()
                await exchange.write(out)
        out = b"".join(encoder.encode(chunk) for chunk in decoder.finish())
        if not decoder.finished:
            raise ProviderProtocolError(
                "Provider stream ended before the answer was complete."
            )
        await exchange.write(out + encoder.finish(), more=False)
    except (ProviderError, TimeoutError, OSError) as exc:
        error = (
            exc
            if isinstance(exc, ProviderError)
            else ProviderProtocolError("Provider stream failed.")
        )
        call.error_code = error.code
        await exchange.write(encoder.error(error), more=False)
    except Exception as exc:
        if type(exc).__module__.startswith("aiohttp"):
            error = ProviderProtocolError(
                f"Provider stream failed: {type(exc).__name__}."
            )
            call.error_code = error.code
            await exchange.write(encoder.error(error), more=False)
            return
        raise
    finally:
        call.usage = decoder.usage


async def _pump_native(exchange, call, adapter, response, encoder) -> None:
    observer = adapter.native_stream_observer()
    try:
        async for data in response.content.iter_any():
            observer.feed(data)
            call.mark_first_byte()
            await exchange.write(data)
        if not observer.finished:
            raise ProviderProtocolError(
                "Provider stream ended before the answer was complete."
            )
        await exchange.write(b"", more=False)
    except Exception as exc:
        if (
            isinstance(exc, ProviderError)
            or type(exc).__module__.startswith("aiohttp")
            or isinstance(exc, OSError)
        ):
            error = (
                exc
                if isinstance(exc, ProviderError)
                else ProviderProtocolError("Provider stream failed.")
            )
            call.error_code = error.code
            await exchange.write(encoder.error(error), more=False)
            return
        raise
    finally:
        call.usage = observer.usage


async def embeddings(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """Serve an embeddings request."""
    call.key = authenticate(exchange, runtime, accept_x_api_key=False)
    body = await read_json(exchange)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested_model = body["model"]
    request = ingress.decode_embeddings(body)
    call.model = resolve_model(runtime.snapshot, call.key, request.model, "embeddings")
    call.connection = runtime.snapshot.connection(call.model)
    adapter = runtime.adapter(call.connection.id)
    upstream = adapter.build_embeddings_request(request, call.model.upstream_model)
    await adapter.authorize(upstream)

    async def work() -> None:
        response = await _open(runtime, adapter, upstream)
        async with response:
            raw = await _read(response)
        call.mark_first_byte()
        result = adapter.parse_embeddings_response(raw, request)
        call.usage = result.usage
        call.status = 200
        await exchange.json(
            200, ingress.encode_embeddings(result, request), call.headers()
        )

    await until_disconnect(exchange, work())


async def models(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """List the models the key may call, in OpenAI or Anthropic shape."""
    anthropic = "anthropic-version" in exchange.headers
    call.key = authenticate(exchange, runtime, accept_x_api_key=anthropic)
    entries = visible_models(runtime.snapshot, call.key)
    call.status = 200
    if anthropic:
        data = [
            {
                "type": "model",
                "id": m.name,
                "display_name": m.name,
                "created_at": "1970-01-01T00:00:00Z",
            }
            for m in entries
        ]
        payload = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    else:
        payload = {
            "object": "list",
            "data": [
                {"id": m.name, "object": "model", "created": 0, "owned_by": "nexus"}
                for m in entries
            ],
        }
    await exchange.json(200, payload, call.headers())
