"""ASGI entry of the traffic plane: routes /v1/... to the endpoint handlers.

Django's request and middleware machinery stays off this path; everything else goes
to Django's own ASGI handler.
"""

import logging
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
from nexus.engine.ingress.openai import OpenAIIngress
from nexus.engine.ingress.responses import ResponsesIngress

logger = logging.getLogger(__name__)

OPENAI = OpenAIIngress()
ANTHROPIC = AnthropicIngress()
RESPONSES = ResponsesIngress()

# path -> (method, ingress, audit name, handler)
ROUTES: dict[str, tuple[str, Any, str, Any]] = {
    "/v1/chat/completions": ("POST", OPENAI, "chat", traffic.chat),
    "/v1/embeddings": ("POST", OPENAI, "embeddings", traffic.embeddings),
    "/v1/messages": ("POST", ANTHROPIC, "messages", traffic.chat),
    "/v1/responses": ("POST", RESPONSES, "responses", serve_responses),
    "/v1/models": ("GET", OPENAI, "models", traffic.models),
}


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
        route = ROUTES.get(path)
        ingress = (
            route[1]
            if route
            else (ANTHROPIC if path.startswith("/v1/messages") else OPENAI)
        )
        call = Call(
            ingress=route[2] if route else "unknown", client_ip=exchange.client_ip
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
        elif scope["method"] != route[0]:
            error = MethodNotAllowedError(
                f"{scope['method']} is not allowed on {path}; use {route[0]}."
            )
            await traffic.serve(
                exchange, runtime, ingress, call, _raise(error, {"allow": route[0]})
            )
        else:
            await traffic.serve(exchange, runtime, ingress, call, route[3])


def _raise(error: Exception, headers: dict[str, str] | None = None):
    error.headers.update(headers or {})

    async def handler(exchange, runtime, ingress, call) -> None:
        raise error

    return handler
