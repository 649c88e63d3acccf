"""ASGI entry of the traffic plane: routes /v1/... to the endpoint handlers.

Django's request and middleware machinery stays off this path; everything else goes
to Django's own ASGI handler.
"""

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from apps.gateway import traffic
from apps.gateway.exchange import Exchange
from apps.gateway.responses import serve_responses
from apps.gateway.runtime import GatewayRuntime
from nexus.engine.call import Call
from nexus.engine.errors import (
    HeadersTooLargeError,
    MethodNotAllowedError,
    NotFoundError,
)
from nexus.engine.ingress.anthropic import AnthropicIngress
from nexus.engine.ingress.base import Ingress
from nexus.engine.ingress.openai import OpenAIIngress
from nexus.engine.ingress.responses import ResponsesIngress

logger = logging.getLogger(__name__)

OPENAI = OpenAIIngress()
ANTHROPIC = AnthropicIngress()
RESPONSES = ResponsesIngress()


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path, the ingress its errors use, audit name, handler.

    A path ending in "/{name}" matches any id after the prefix, passed to the
    handler as the keyword argument name. The id is one path segment unless
    slashes is True, since model ids such as "meta-llama/Llama-3-8b" contain
    slashes. With anthropic_callers, a request carrying an anthropic-version
    header gets the Anthropic format.
    """

    method: str
    path: str
    ingress: Ingress
    name: str
    handler: Any
    slashes: bool = False
    anthropic_callers: bool = False
    prefix: str = field(init=False)
    param: str = field(init=False)

    def __post_init__(self) -> None:
        prefix, _, param = self.path.partition("{")
        # The dataclass is frozen, so the derived fields are set this way.
        object.__setattr__(self, "prefix", prefix if param else "")
        object.__setattr__(self, "param", param.rstrip("}"))

    def path_params(self, path: str) -> dict[str, str] | None:
        """Return the handler's keyword arguments for path, or None if it does not match."""
        if not self.prefix:
            return {} if path == self.path else None
        if not path.startswith(self.prefix) or len(path) == len(self.prefix):
            return None
        value = path[len(self.prefix) :]
        if "/" in value and not self.slashes:
            return None
        return {self.param: value}


ROUTES = (
    Route("POST", "/v1/chat/completions", OPENAI, "chat", traffic.chat),
    Route("POST", "/v1/embeddings", OPENAI, "embeddings", traffic.embeddings),
    Route("POST", "/v1/messages", ANTHROPIC, "messages", traffic.chat),
    Route(
        "POST",
        "/v1/messages/count_tokens",
        ANTHROPIC,
        "count_tokens",
        traffic.count_tokens,
    ),
    Route("POST", "/v1/responses", RESPONSES, "responses", serve_responses),
    Route(
        "GET",
        "/v1/responses/{response_id}",
        RESPONSES,
        "responses.retrieve",
        traffic.retrieve_response,
    ),
    Route(
        "DELETE",
        "/v1/responses/{response_id}",
        RESPONSES,
        "responses.delete",
        traffic.delete_response,
    ),
    Route(
        "GET",
        "/v1/models",
        OPENAI,
        "models",
        traffic.models,
        anthropic_callers=True,
    ),
    Route(
        "GET",
        "/v1/models/{model_id}",
        OPENAI,
        "models.retrieve",
        traffic.model,
        slashes=True,
        anthropic_callers=True,
    ),
)


# Routes by exact path, looked up first, and the routes whose path ends in an id.
EXACT_ROUTES: dict[str, list[Route]] = {
    route.path: [other for other in ROUTES if other.path == route.path]
    for route in ROUTES
    if not route.prefix
}
ID_ROUTES = [route for route in ROUTES if route.prefix]


def match(path: str) -> list[tuple[Route, dict[str, str]]]:
    """Return the routes that serve path, one per method, with their path parameters.

    Exact paths win over paths with an id, so /v1/messages/count_tokens is never
    read as an id.
    """
    if path in EXACT_ROUTES:
        return [(route, {}) for route in EXACT_ROUTES[path]]
    found: list[tuple[Route, dict[str, str]]] = []
    for route in ID_ROUTES:
        params = route.path_params(path)
        if params is not None:
            found.append((route, params))
    return found


class GatewayApp:
    """Serve the traffic endpoints from one runtime."""

    def __init__(self, runtime: GatewayRuntime | None = None) -> None:
        self.runtime = runtime or GatewayRuntime()

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        from django.conf import settings

        runtime = self.runtime
        if not runtime.started:
            await runtime.start()
        exchange = Exchange(scope, receive, send)
        path = scope["path"].rstrip("/") or "/"
        if path in ("/healthz", "/readyz"):
            await exchange.json(
                200, {"status": "ok", "config_version": runtime.snapshot.version}
            )
            return
        routes = match(path)
        chosen = [item for item in routes if item[0].method == scope["method"]]
        # A wrong method still gets the path's error format and audit name.
        route, params = (chosen or routes or [(None, {})])[0]
        ingress = _ingress(exchange, path, route)
        call = Call(
            ingress=route.name if route else "unknown", client_ip=exchange.client_ip
        )
        if exchange.header_bytes > settings.NEXUS_MAX_HEADER_BYTES:
            error = HeadersTooLargeError(
                f"Request headers are over the limit of {settings.NEXUS_MAX_HEADER_BYTES} bytes."
            )
            await traffic.serve(exchange, runtime, ingress, call, _raise(error))
        elif route is None:
            await traffic.serve(
                exchange,
                runtime,
                ingress,
                call,
                _raise(NotFoundError(f"No endpoint at {scope['path']}.")),
            )
        elif not chosen:
            methods = ", ".join(sorted(item[0].method for item in routes))
            error = MethodNotAllowedError(
                f"{scope['method']} is not allowed on {path}; use {methods}."
            )
            await traffic.serve(
                exchange, runtime, ingress, call, _raise(error, {"allow": methods})
            )
        else:
            handler = functools.partial(route.handler, **params)
            await traffic.serve(exchange, runtime, ingress, call, handler)


def _ingress(exchange: Exchange, path: str, route: Route | None) -> Ingress:
    """Return the wire format of the request's response and errors."""
    if route is None:
        return ANTHROPIC if path.startswith("/v1/messages") else OPENAI
    if route.anthropic_callers and "anthropic-version" in exchange.headers:
        return ANTHROPIC
    return route.ingress


def _raise(error: Exception, headers: dict[str, str] | None = None):
    error.headers.update(headers or {})

    async def handler(exchange, runtime, ingress, call) -> None:
        raise error

    return handler
