"""The traffic endpoints: authenticate, decode, run the stages, call upstream, audit.

Nothing here touches the database: keys, models and connections come from the
in-memory snapshot, and audit events go to the background writer.
"""

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings

from apps.gateway.exchange import ClientDisconnected, Exchange
from apps.gateway.response_store import ResponseStore
from apps.gateway.runtime import GatewayRuntime
from apps.gateway.upstream import (
    attempt_record,
    label_answer,
    read_body,
    record_failure,
    replay,
    serve_chat,
    try_targets,
)
from nexus.engine.access import key_allows, resolve_model, visible_models
from nexus.engine.call import Call
from nexus.engine.canonical import EmbeddingsRequest
from nexus.engine.errors import (
    AuthenticationError,
    InvalidRequestError,
    NexusError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
)
from nexus.engine.ingress.base import Ingress
from nexus.engine.keys import digest_key
from nexus.engine.quotas import estimate
from nexus.engine.routing.outcomes import parse_retry_after
from nexus.engine.snapshot import KeyEntry
from nexus.engine.stages import ResponseFilter, Stage
from nexus.engine.targets import Plan, Target

logger = logging.getLogger(__name__)


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
        header_choice = "'x-api-key: <key>' or " if accept_x_api_key else ""
        raise AuthenticationError(
            f"Missing virtual key: send it as {header_choice}'Authorization: Bearer <key>'."
        )
    key = runtime.snapshot.keys.get(digest_key(settings.NEXUS_KEY_HASH_SECRET, token))
    if key is None or not key.is_usable():
        raise AuthenticationError("Invalid, expired or revoked virtual key.")
    return key


async def read_json(exchange: Exchange, call: Call | None = None) -> Any:
    """Read and parse the body as JSON, or raise 400, 408 or 413.

    The body's size in bytes goes to call.state["body_bytes"] for the stages.
    """
    body = await exchange.read_body(
        settings.NEXUS_MAX_REQUEST_BYTES, settings.NEXUS_REQUEST_BODY_TIMEOUT
    )
    if call is not None:
        call.state["body_bytes"] = len(body)
    if not body.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson 3.13 reports invalid UTF-8 as "str is not valid UTF-8: surrogates not
        # allowed" at position 0, which names neither the body nor the real offset.
        try:
            body.decode()
        except UnicodeDecodeError:
            raise InvalidRequestError(
                "The request body is not valid UTF-8 JSON."
            ) from None
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
    """Run one endpoint handler and return any error in the caller's wire format."""
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
    call.error_code = error.code
    if exchange.started:
        if not exchange.finished and not exchange.disconnected:
            # Headers are out, so the status cannot change; end the body cleanly.
            await exchange.write(b"", more=False)
        return
    call.status = error.status
    headers = call.answer_headers()
    headers.update(error.headers)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, int(retry_after + 0.999)))
    body = ingress.error_body(error)
    if ingress.format == "anthropic":
        # Anthropic's error bodies name the request, and its SDK reads the id there.
        body["request_id"] = call.request_id
    await exchange.json(error.status, body, headers)


def response_filters(
    stages: list[Stage], call: Call, request: Any
) -> list[ResponseFilter]:
    return [
        f for stage in stages if (f := stage.response_filter(call, request)) is not None
    ]


async def run_stages(
    runtime: GatewayRuntime, call: Call, request: Any, answer, upstream
) -> None:
    """Run on_request of every stage, then the cached response or the upstream call, then on_complete."""
    entered: list[Stage] = []
    try:
        for stage in runtime.stages:
            entered.append(stage)
            result = await stage.on_request(call, request)
            if result is not None:
                await answer(result, response_filters(entered, call, request))
                return
        await upstream(response_filters(runtime.stages, call, request))
    except NexusError as error:
        # on_complete below sees why the request failed, before the error answer.
        call.error_code = error.code
        call.status = call.status or error.status
        raise
    except ClientDisconnected:
        call.status, call.error_code = 499, "client_disconnected"
        raise
    finally:
        for stage in reversed(entered):
            try:
                await stage.on_complete(call, request)
            except Exception:
                logger.exception(
                    "stage %s failed to complete",
                    stage.name,
                    extra={"request_id": call.request_id},
                )


async def chat(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """Serve a chat completion or Anthropic message, streamed or not."""
    call.key = authenticate(
        exchange, runtime, accept_x_api_key=ingress.format == "anthropic"
    )
    call.headers = exchange.headers
    body = await read_json(exchange, call)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested_model = body["model"]
    request = ingress.decode_chat(body)
    call.stream = request.stream
    snapshot = runtime.snapshot
    call.model = resolve_model(snapshot, call.key, request.model, "chat")
    call.connection = snapshot.connection(call.model)

    async def answer(result, filters) -> None:
        await until_disconnect(
            exchange, replay(exchange, ingress, call, request, result, filters)
        )

    async def upstream(filters) -> None:
        # Planned after the stages' on_request, so routing rules see hook tags.
        plan = runtime.router.plan(
            call, request, call.model, runtime.adapters, runtime.snapshot.connections
        )
        call.connection = plan.targets[0].connection
        await until_disconnect(
            exchange,
            serve_chat(exchange, runtime, ingress, call, request, body, plan, filters),
        )

    await run_stages(runtime, call, request, answer, upstream)


async def embeddings(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """Serve an embeddings request, with the route's retries and failover."""
    call.key = authenticate(exchange, runtime, accept_x_api_key=False)
    call.headers = exchange.headers
    body = await read_json(exchange, call)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested_model = body["model"]
    request = ingress.decode_embeddings(body)
    snapshot = runtime.snapshot
    call.model = resolve_model(snapshot, call.key, request.model, "embeddings")
    plan = runtime.router.plan(
        call, request, call.model, runtime.adapters, snapshot.connections
    )
    call.connection = plan.targets[0].connection

    async def answer(result, filters) -> None:
        raise NexusError(
            "An embeddings request cannot be served from a cached chat result."
        )

    async def run_attempt(target: Target, delay: float | None) -> None:
        await _embeddings_attempt(
            exchange, runtime, ingress, call, request, plan, target, delay
        )

    async def upstream(filters) -> None:
        await until_disconnect(exchange, try_targets(exchange, call, plan, run_attempt))

    await run_stages(runtime, call, request, answer, upstream)


async def _embeddings_attempt(
    exchange: Exchange,
    runtime: GatewayRuntime,
    ingress: Ingress,
    call: Call,
    request: EmbeddingsRequest,
    plan: Plan,
    target: Target,
    delay: float | None,
) -> None:
    """Send one embeddings attempt to target and send its result, or raise ProviderError."""
    started = time.perf_counter()
    record = attempt_record(call, target, started, delay)
    timeout = plan.timeout_for(target, settings.NEXUS_UPSTREAM_TIMEOUT)
    try:
        raw, headers = await _fetch_embeddings(runtime, target, request, timeout)
        result = target.adapter.parse_embeddings_response(raw, request)
    except ProviderError as error:
        record_failure(runtime, target, record, started, error)
        raise
    elapsed = (time.perf_counter() - started) * 1000
    record.update(status=200, ms=round(elapsed, 2))
    runtime.router.record(
        target, ok=True, latency_ms=elapsed, status=200, headers=headers
    )

    label_answer(call, plan, call.details["attempts"])
    call.mark_first_byte()
    call.usage = result.usage
    call.complete = True
    call.status = 200
    await exchange.json(
        200, ingress.encode_embeddings(result, request), call.answer_headers()
    )


async def _fetch_embeddings(
    runtime: GatewayRuntime,
    target: Target,
    request: EmbeddingsRequest,
    timeout: float,
) -> tuple[bytes, Any]:
    """Return the body and headers of a successful embeddings response within timeout."""
    adapter = target.adapter
    outgoing = adapter.build_embeddings_request(request, target.model.upstream_model)
    await adapter.authorize(outgoing)
    try:
        async with asyncio.timeout(timeout):
            response = await adapter.send(runtime.client, outgoing, timeout=timeout)
            async with response:
                raw = await read_body(response, timeout)
    except TimeoutError:
        raise ProviderTimeoutError(
            f"Provider did not respond within {timeout:g} s."
        ) from None
    if response.status >= 400:
        error = adapter.parse_error(response.status, raw)
        error.retry_after = parse_retry_after(response.headers)
        raise error
    return raw, response.headers


async def models(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """List the models the key may call, in OpenAI or Anthropic shape."""
    call.key = authenticate(
        exchange, runtime, accept_x_api_key=ingress.format == "anthropic"
    )
    names = [entry.name for entry in visible_models(runtime.snapshot, call.key)]
    call.status = 200
    await exchange.json(200, ingress.model_list(names), call.answer_headers())


async def model(
    exchange: Exchange,
    runtime: GatewayRuntime,
    ingress: Ingress,
    call: Call,
    *,
    model_id: str,
) -> None:
    """Describe one model or alias the key may call, in OpenAI or Anthropic shape."""
    call.key = authenticate(
        exchange, runtime, accept_x_api_key=ingress.format == "anthropic"
    )
    call.requested_model = model_id
    entry = runtime.snapshot.find_model(model_id)
    # A model outside the key's allow list is reported like an unknown one.
    if entry is None or not key_allows(call.key, entry):
        raise NotFoundError(
            f'Model "{model_id}" does not exist or is not available to this key.',
            param="model",
            code="model_not_found",
        )
    call.status = 200
    await exchange.json(200, ingress.model_object(model_id), call.answer_headers())


async def count_tokens(
    exchange: Exchange, runtime: GatewayRuntime, ingress: Ingress, call: Call
) -> None:
    """Count the input tokens of an Anthropic Messages request, without an upstream call.

    The count is the quota stage's prompt estimate: the model family's BPE encoding
    for OpenAI models, and for other models (Claude included) the o200k_base count
    plus a margin.
    """
    call.key = authenticate(exchange, runtime, accept_x_api_key=True)
    call.headers = exchange.headers
    body = await read_json(exchange, call)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested_model = body["model"]
    request = ingress.decode_count_tokens(body)
    call.model = resolve_model(runtime.snapshot, call.key, request.model, "chat")

    # NOTE: this is an estimate, not Anthropic's tokenizer, so for Claude it can
    # differ from Anthropic's own count in either direction by an unmeasured amount.
    count = await estimate.prompt_tokens(call.model.upstream_model, request)

    call.status = 200
    await exchange.json(200, {"input_tokens": count.tokens}, call.answer_headers())


class ResponseNotFoundError(NotFoundError):
    """A response id names no stored response of the caller's org."""

    code = "response_not_found"
    type = "invalid_request_error"


def _start_stored_response_call(
    exchange: Exchange, runtime: GatewayRuntime, call: Call, response_id: str
) -> None:
    """Authenticate a stored-response request and name the response in its audit."""
    call.key = authenticate(exchange, runtime, accept_x_api_key=False)
    call.details["responses"] = {"response_id": response_id}


async def retrieve_response(
    exchange: Exchange,
    runtime: GatewayRuntime,
    ingress: Ingress,
    call: Call,
    *,
    response_id: str,
) -> None:
    """Return a stored Response object of the caller's org from the response store."""
    _start_stored_response_call(exchange, runtime, call, response_id)
    query = parse_qs(exchange.scope.get("query_string", b"").decode("latin-1"))
    if query.get("stream", ["false"])[-1].lower() in ("true", "1"):
        raise InvalidRequestError(
            "Streaming a stored response is not supported; retrieve it without "
            "stream=true.",
            param="stream",
        )

    record = await ResponseStore(runtime).load(call.key.org_id, response_id)
    response = record.get("response") if record else None
    # A record without a Response object, stored by an older gateway, serves only
    # previous_response_id.
    if not isinstance(response, dict):
        raise ResponseNotFoundError(f"Response with id '{response_id}' not found.")

    call.status = 200
    await exchange.json(200, response, call.answer_headers())


async def delete_response(
    exchange: Exchange,
    runtime: GatewayRuntime,
    ingress: Ingress,
    call: Call,
    *,
    response_id: str,
) -> None:
    """Delete a stored response of the caller's org from the response store."""
    _start_stored_response_call(exchange, runtime, call, response_id)

    if not await ResponseStore(runtime).delete(call.key.org_id, response_id):
        raise ResponseNotFoundError(f"Response with id '{response_id}' not found.")

    call.details["responses"]["deleted"] = True
    call.status = 200
    await exchange.json(
        200,
        {"id": response_id, "object": "response", "deleted": True},
        call.answer_headers(),
    )
