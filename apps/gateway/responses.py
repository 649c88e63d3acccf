"""The `POST /v1/responses` endpoint: the OpenAI Responses API on any provider.

A request naming `previous_response_id` gets that response's input and output items
put before its own input, loaded from the response store of the caller's org. An
unknown id, or one of another org, is rejected with 404. The request is then served like a
chat completion: forwarded unchanged to an OpenAI upstream when no stage changed it,
translated for every other provider. The finished response is stored before its
last bytes reach the caller, so a follow-up request can name it at once.
"""

import logging
from typing import Any

from apps.gateway.exchange import Exchange
from apps.gateway.response_store import ResponseStore
from apps.gateway.runtime import GatewayRuntime
from apps.gateway.traffic import (
    authenticate,
    read_json,
    run_stages,
    until_disconnect,
)
from apps.gateway.upstream import replay, serve_chat
from nexus.engine.access import resolve_model
from nexus.engine.call import Call
from nexus.engine.errors import InvalidRequestError, NotFoundError
from nexus.engine.ingress.responses import ResponsesIngress
from nexus.engine.ingress.responses_encode import ResponsesContext, context_of
from nexus.engine.targets import Plan

logger = logging.getLogger(__name__)

STORED_STATUSES = ("completed", "incomplete")


class PreviousResponseNotFoundError(NotFoundError):
    """previous_response_id names no stored response of the caller's org."""

    code = "previous_response_not_found"
    type = "invalid_request_error"


async def serve_responses(
    exchange: Exchange, runtime: GatewayRuntime, ingress: ResponsesIngress, call: Call
) -> None:
    """Serve a Responses API request, streamed or not."""
    call.key = authenticate(exchange, runtime, accept_x_api_key=False)
    call.headers = exchange.headers
    body = await read_json(exchange, call)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested_model = body["model"]
    store = ResponseStore(runtime)
    history = await load_history(store, call.key.org_id, body)
    request = ingress.decode_chat(body, history)
    context = context_of(request)
    call.stream = request.stream
    snapshot = runtime.snapshot
    call.model = resolve_model(snapshot, call.key, request.model, "chat")
    plan = runtime.router.plan(
        call, request, call.model, runtime.adapters, snapshot.connections
    )
    call.connection = plan.targets[0].connection
    call.details["responses"] = {
        "previous_response_id": body.get("previous_response_id"),
        "store": context.store,
    }
    storing = StoringExchange(exchange, store, call, context)

    async def answer(result, filters) -> None:
        await until_disconnect(
            exchange, replay(storing, ingress, call, request, result, filters)
        )

    async def upstream(filters) -> None:
        _check_native_only(context, plan, call, translated=bool(filters))
        work = serve_chat(
            storing,
            runtime,
            ingress,
            call,
            request,
            native_body(body, context),
            plan,
            filters,
        )
        await until_disconnect(exchange, work)

    await run_stages(runtime, call, request, answer, upstream)


async def load_history(
    store: ResponseStore, org_id: int, body: Any
) -> list[dict[str, Any]]:
    """Return the input and output items of the response previous_response_id names."""
    if not isinstance(body, dict) or body.get("previous_response_id") is None:
        return []
    response_id = body["previous_response_id"]
    if not isinstance(response_id, str) or not response_id:
        raise InvalidRequestError(
            "'previous_response_id' must be a non-empty string.",
            param="previous_response_id",
        )
    record = await store.load(org_id, response_id)
    if record is None:
        raise PreviousResponseNotFoundError(
            f"Previous response with id '{response_id}' not found.",
            param="previous_response_id",
        )
    return [*record.get("input", []), *record.get("output", [])]


def native_body(body: dict[str, Any], context: ResponsesContext) -> dict[str, Any]:
    """Return the body an OpenAI upstream gets when the request is passed through.

    With previous_response_id the stored items replace it in `input`, since the id
    may be the gateway's own and unknown to the upstream.
    """
    if body.get("previous_response_id") is None:
        return body
    forwarded = {
        name: value for name, value in body.items() if name != "previous_response_id"
    }
    forwarded["input"] = context.input_items
    return forwarded


def _check_native_only(
    context: ResponsesContext, plan: Plan, call: Call, *, translated: bool
) -> None:
    if not context.native_only:
        return
    passthrough = (
        not translated
        and not call.state.get("request_modified")
        and all(target.adapter.accepts_native("responses") for target in plan.targets)
    )
    if passthrough:
        return
    raise InvalidRequestError(
        f"{', '.join(context.native_only)} can only be served by an OpenAI upstream "
        "that receives the request unchanged; this model's provider or the request "
        "hooks need a translated request. Remove these items or use an OpenAI model."
    )


class StoringExchange:
    """An Exchange that stores the finished response before its last bytes go out.

    Streams passed through from OpenAI end with response.completed in an ordinary
    write, so every write first checks whether the response has finished.
    """

    def __init__(
        self,
        exchange: Exchange,
        store: ResponseStore,
        call: Call,
        context: ResponsesContext,
    ) -> None:
        self._exchange = exchange
        self._store = store
        self._call = call
        self._context = context
        self._saved = not context.store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._exchange, name)

    async def json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        await self._save_when_finished()
        await self._exchange.json(status, payload, headers)

    async def write(self, data: bytes, *, more: bool = True) -> None:
        await self._save_when_finished()
        await self._exchange.write(data, more=more)

    async def _save_when_finished(self) -> None:
        if self._saved:
            return
        response, translated = self._finished_response()
        if response is None:
            return
        self._saved = True
        output = response.get("output") or []
        # A passed-through stream contains the upstream model name, so the stored
        # object gets the name the caller sent, as non-streamed responses do.
        stored_response = {**response, "model": self._context.body.get("model")}
        record = {
            "input": self._context.input_items,
            "output": portable_output(output) if translated else output,
            "response": stored_response,
        }
        await self._store.save(self._call.key.org_id, str(response["id"]), record)
        self._call.details["responses"]["response_id"] = response["id"]

    def _finished_response(self) -> tuple[dict[str, Any] | None, bool]:
        state = self._call.state
        observer = state.get("native_observer")
        candidates = [
            (self._context.final, True),
            (state.get("native_answer"), False),
            (getattr(observer, "response", None), False),
        ]
        for response, translated in candidates:
            if isinstance(response, dict) and response.get("status") in STORED_STATUSES:
                return response, translated
        return None, False


def portable_output(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a translated answer's output items as input items any upstream accepts.

    Item ids are the gateway's own, which OpenAI would look up and not find, so they
    are left out, and so is reasoning text, which needs the provider's signature.
    """
    items: list[dict[str, Any]] = []
    for item in output:
        if item.get("type") == "message":
            text = "".join(
                part.get("text", "")
                for part in item.get("content") or []
                if part.get("type") == "output_text"
            )
            items.append({"type": "message", "role": "assistant", "content": text})
        elif item.get("type") == "function_call":
            items.append(
                {
                    "type": "function_call",
                    "call_id": item["call_id"],
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
    return items
