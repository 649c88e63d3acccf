"""Fake Gemini API (Google AI Studio): generateContent, streaming and embeddings.

Routes, for the API versions v1beta and v1:

- ``POST /{version}/models/{model}:generateContent``
- ``POST /{version}/models/{model}:streamGenerateContent``: server-sent events with
  ``?alt=sse``, otherwise one JSON array of the streamed responses.
- ``POST /{version}/models/{model}:embedContent`` and ``:batchEmbedContents``

Requests need an API key in ``x-goog-api-key``. Without one the response is 403
PERMISSION_DENIED. A key that differs from the expected Gemini key gets 400
INVALID_ARGUMENT with reason API_KEY_INVALID, as from the real API. Errors use
Google's ``{"error": {"code", "message", "status"}}``, and a scripted error's type
is the status name, for example ``{"status": 429, "error": "RESOURCE_EXHAUSTED"}``.

Like the real API, the fake rejects unknown fields ("Unknown name"), roles other
than user and model, schema keywords outside Gemini's Schema object, object schemas
with empty properties, and a turn of function responses whose count differs from
the function calls before it. The shapes live in ``gemini_shapes``, which the fake
Vertex AI shares.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider import embedding
from nexus.fakeprovider.reply import compose_reply
from nexus.fakeprovider.vendors import gemini_shapes
from nexus.fakeprovider.vendors.base import Call, Endpoint, Vendor, next_request_id

logger = logging.getLogger(__name__)

EMBED_REQUEST_FIELDS = {"model", "content", "taskType", "title", "outputDimensionality"}


class GoogleVendor(Vendor):
    """Google's error format and the generateContent handler, shared with Vertex AI."""

    request_id_header: ClassVar[str] = "x-goog-request-id"
    vertex: ClassVar[bool] = False

    def error_response(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> web.Response:
        """Return ``{"error": {"code", "message", "status"}}``."""
        status_name = (
            error_type if error_type.isupper() else gemini_shapes.status_name(status)
        )
        body = {"error": {"code": status, "message": message, "status": status_name}}
        if code:
            body["error"]["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                }
            ]
        return self.json_response(body, status, headers)

    def invalid(self, message: str) -> web.Response:
        return self.error_response(400, "INVALID_ARGUMENT", message)

    async def generate(
        self, call: Call, model: str, stream: bool
    ) -> web.StreamResponse:
        """Return the generateContent or streamGenerateContent response for model."""
        if not isinstance(call.body, dict):
            return self.invalid("Invalid JSON payload received.")
        problem = gemini_shapes.check_generate_body(call.body, vertex=self.vertex)
        if problem:
            return self.invalid(problem)

        body = gemini_shapes.camel_keys(call.body)
        reply = compose_reply(gemini_shapes.prompt(body, model), call.reply_override)
        response_id = next_request_id("fake-resp-")
        if not stream:
            return self.json_response(gemini_shapes.response_object(reply, response_id))
        events = gemini_shapes.stream_responses(reply, response_id)
        if call.request.query.get("alt") != "sse":
            return self.json_response(events)
        return await self.stream(call, [gemini_shapes.sse(event) for event in events])


class GeminiVendor(GoogleVendor):
    """The Gemini API under ``/v1beta`` and ``/v1``."""

    name: ClassVar[str] = "gemini"

    def endpoints(self) -> list[Endpoint]:
        """Return the model method routes, where the method follows a colon in the path."""
        return [
            Endpoint(
                "POST", "/{version:v1beta|v1}/models/{model_method}", self.dispatch
            )
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing API key (403) and a wrong one (400 API_KEY_INVALID)."""
        key = headers.get("x-goog-api-key", "").strip()
        if not key:
            return self.error_response(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of API "
                "consumer identity to call this API.",
            )
        if expected_key is not None and key != expected_key:
            return self.error_response(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                code="API_KEY_INVALID",
            )
        return None

    async def dispatch(self, call: Call) -> web.StreamResponse:
        """Route ``{model}:{method}`` to its handler."""
        model, _, method = call.request.match_info["model_method"].partition(":")
        if method == "generateContent":
            return await self.generate(call, model, stream=False)
        if method == "streamGenerateContent":
            return await self.generate(call, model, stream=True)
        if method == "embedContent":
            return self.embed_content(call, model)
        if method == "batchEmbedContents":
            return self.batch_embed_contents(call, model)
        return self.error_response(
            404, "NOT_FOUND", f"Method {method or '(none)'} is not found for models."
        )

    def embed_content(self, call: Call, model: str) -> web.Response:
        """Return ``{"embedding": {"values": [...]}}`` for one content."""
        if not isinstance(call.body, dict):
            return self.invalid("Invalid JSON payload received.")
        body = gemini_shapes.camel_keys(call.body)
        problem = _check_embed_request(body, "", model)
        if problem:
            return self.invalid(problem)
        return self.json_response({"embedding": {"values": _embed(body)}})

    def batch_embed_contents(self, call: Call, model: str) -> web.Response:
        """Return one embedding per request, without usage, as the real API does."""
        if not isinstance(call.body, dict):
            return self.invalid("Invalid JSON payload received.")
        body = gemini_shapes.camel_keys(call.body)
        unknown = sorted(set(body) - {"requests"})
        if unknown:
            return self.invalid(gemini_shapes.unknown_field(unknown[0]))
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return self.invalid(
                "* BatchEmbedContentsRequest.requests: must not be empty"
            )
        for index, request in enumerate(requests):
            problem = _check_embed_request(request, f"requests[{index}].", model)
            if problem:
                return self.invalid(problem)
        embeddings = [{"values": _embed(request)} for request in requests]
        return self.json_response({"embeddings": embeddings})


def _check_embed_request(request: Any, prefix: str, model: str) -> str | None:
    if not isinstance(request, dict):
        return f"Invalid value at '{prefix or 'request'}': must be an object."
    unknown = sorted(set(request) - EMBED_REQUEST_FIELDS)
    if unknown:
        return gemini_shapes.unknown_field(unknown[0], prefix.rstrip("."))
    if prefix and request.get("model") != f"models/{model}":
        return (
            f"* BatchEmbedContentsRequest.{prefix}model: the model must be "
            f"models/{model}, as in the URL, got {request.get('model')!r}."
        )
    parts = (request.get("content") or {}).get("parts")
    if not isinstance(parts, list) or not parts:
        return f"* {prefix}content.parts: must not be empty."
    dimensions = request.get("outputDimensionality")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
        return f"* {prefix}outputDimensionality: invalid value {dimensions!r}."
    return None


def _embed(request: dict[str, Any]) -> list[float]:
    parts = request["content"]["parts"]
    text = " ".join(
        str(part.get("text", "")) for part in parts if isinstance(part, dict)
    )
    dimensions = request.get("outputDimensionality") or embedding.DEFAULT_DIMENSIONS
    return embedding.embed_text(text, dimensions)
