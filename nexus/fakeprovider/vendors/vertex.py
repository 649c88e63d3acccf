"""Fake Vertex AI: Gemini and Claude models under a project and location.

Routes, for the API versions v1 and v1beta1, under
``/{version}/projects/{project}/locations/{location}``:

- ``/publishers/google/models/{model}:generateContent``,
  ``:streamGenerateContent`` (SSE with ``?alt=sse``) and ``:predict`` (embeddings:
  ``instances[].content`` in, ``predictions[].embeddings`` with token statistics out)
- ``/publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``: the
  Anthropic Messages API, with ``anthropic_version`` in the body (``vertex-2023-10-16``,
  or a dated version such as the anthropic SDK 2.x sends) and no ``model`` field
  (400 otherwise)

Requests need ``Authorization: Bearer <access token>``. Without one, or with one
that differs from the expected Vertex key, the response is 401 UNAUTHENTICATED.
"""

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider import embedding
from nexus.fakeprovider.reply import compose_reply, count_words
from nexus.fakeprovider.vendors import anthropic as anthropic_shapes
from nexus.fakeprovider.vendors.base import Call, Endpoint, next_request_id, sse_event
from nexus.fakeprovider.vendors.gemini import GoogleVendor

logger = logging.getLogger(__name__)

ANTHROPIC_VERSION = re.compile(r"^(vertex-2023-10-16|\d{4}-\d{2}-\d{2})$")
MODEL_PREFIX = (
    "/{version:v1|v1beta1}/projects/{project}/locations/{location}/publishers"
)
PREDICT_PARAMETERS = {"outputDimensionality", "autoTruncate"}
INSTANCE_FIELDS = {"content", "task_type", "title", "mimeType"}


class VertexVendor(GoogleVendor):
    """Vertex AI's generative model routes."""

    name: ClassVar[str] = "vertex"
    vertex: ClassVar[bool] = True

    def endpoints(self) -> list[Endpoint]:
        """Return the Google and Anthropic publisher routes."""
        return [
            Endpoint(
                "POST", MODEL_PREFIX + "/google/models/{model_method}", self.google
            ),
            Endpoint(
                "POST",
                MODEL_PREFIX + "/anthropic/models/{model_method}",
                self.anthropic,
            ),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing bearer token, or one that differs from the expected one."""
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if (
            scheme.lower() != "bearer"
            or not token
            or (expected_key is not None and token != expected_key)
        ):
            return self.error_response(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
            )
        return None

    async def google(self, call: Call) -> web.StreamResponse:
        """Route a Gemini model method."""
        model, _, method = call.request.match_info["model_method"].partition(":")
        if method == "generateContent":
            return await self.generate(call, model, stream=False)
        if method == "streamGenerateContent":
            return await self.generate(call, model, stream=True)
        if method == "predict":
            return self.predict(call)
        return self.error_response(404, "NOT_FOUND", f"Method {method!r} is not found.")

    def predict(self, call: Call) -> web.Response:
        """Return one embedding per instance with its token statistics."""
        body = call.body
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
            return self.invalid("instances must be a non-empty list.")
        parameters = body.get("parameters") or {}
        unknown = sorted(set(parameters) - PREDICT_PARAMETERS)
        if unknown or not body["instances"]:
            return self.invalid(
                f"Unsupported parameters: {', '.join(unknown) or 'none'}."
            )
        dimensions = (
            parameters.get("outputDimensionality") or embedding.DEFAULT_DIMENSIONS
        )

        predictions = []
        characters = 0
        for instance in body["instances"]:
            if not isinstance(instance, dict) or set(instance) - INSTANCE_FIELDS:
                return self.invalid(
                    "Each instance needs content and known fields only."
                )
            text = str(instance.get("content", ""))
            characters += len(text)
            statistics = {"token_count": count_words(text), "truncated": False}
            values = embedding.embed_text(text, dimensions)
            predictions.append(
                {"embeddings": {"values": values, "statistics": statistics}}
            )
        return self.json_response(
            {
                "predictions": predictions,
                "metadata": {"billableCharacterCount": characters},
            }
        )

    async def anthropic(self, call: Call) -> web.StreamResponse:
        """Return the rawPredict or streamRawPredict response, an Anthropic Message."""
        model, _, method = call.request.match_info["model_method"].partition(":")
        if method not in ("rawPredict", "streamRawPredict"):
            return self.error_response(
                404, "NOT_FOUND", f"Method {method!r} is not found."
            )
        problem = _check_anthropic_body(call.body)
        if problem:
            return self.json_response(_anthropic_error(problem), 400)

        body = {**call.body, "model": model}
        prompt = anthropic_shapes.messages_prompt(body)
        reply = compose_reply(prompt, call.reply_override)
        message_id = next_request_id("msg_vrtx_")
        if method == "rawPredict":
            return self.json_response(
                anthropic_shapes.message_object(reply, message_id)
            )
        events = [
            sse_event(data, data["type"])
            for data in anthropic_shapes.stream_events(reply, message_id)
        ]
        return await self.stream(call, events)


def _check_anthropic_body(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body is not a JSON object."
    version = body.get("anthropic_version")
    if not isinstance(version, str) or not ANTHROPIC_VERSION.match(version):
        return f"anthropic_version: invalid or missing version {version!r}."
    if "model" in body:
        return "model: Extra inputs are not permitted; the model is named in the URL."
    for key in ("messages", "max_tokens"):
        if key not in body:
            return f"{key}: Field required."
    return None


def _anthropic_error(message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
    }
