"""Fake Voyage AI embeddings, served at ``POST /voyage/v1/embeddings``.

Voyage's real path is ``/v1/embeddings``, which the fake OpenAI vendor already
serves, so this vendor lives under ``/voyage``: point a connection's base_url at
``<fake url>/voyage/v1``. Requests need a Bearer key; errors are ``{"detail": ...}``.
``input_type`` must be null, query or document; ``output_dimension`` sets the vector
size; ``encoding_format: base64`` returns base64 of little-endian float32 values.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider import embedding
from nexus.fakeprovider.reply import count_words
from nexus.fakeprovider.vendors.base import Call, Endpoint, Vendor

logger = logging.getLogger(__name__)


class VoyageVendor(Vendor):
    """Voyage AI's embeddings endpoint."""

    name: ClassVar[str] = "voyage"

    def endpoints(self) -> list[Endpoint]:
        """Return the embeddings route."""
        return [Endpoint("POST", "/voyage/v1/embeddings", self.embeddings)]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing bearer token, or one that differs from the expected key."""
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self.error_response(401, "unauthorized", "No API key provided.")
        if expected_key is not None and key.strip() != expected_key:
            return self.error_response(
                401,
                "unauthorized",
                "Provided API key is invalid.",
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return Voyage's error body, which has only a detail."""
        return {"detail": message}

    async def embeddings(self, call: Call) -> web.StreamResponse:
        """Return one vector per input, as floats or base64."""
        rejection = self.reject_body(call, "model", "input")
        if rejection is not None:
            return rejection
        body = call.body
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        problem = _problem(body, texts)
        if problem:
            return self.error_response(400, "invalid_request", problem)
        dimensions = body.get("output_dimension") or embedding.DEFAULT_DIMENSIONS
        data = []
        for index, text in enumerate(texts):
            vector: Any = embedding.embed_text(text, dimensions)
            if body.get("encoding_format") == "base64":
                vector = embedding.encode_base64(vector)
            data.append({"object": "embedding", "embedding": vector, "index": index})
        tokens = sum(count_words(text) for text in texts)
        return self.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"total_tokens": tokens},
            }
        )


def _problem(body: dict[str, Any], texts: list[Any]) -> str | None:
    if not texts or not all(isinstance(text, str) for text in texts):
        return "input must be a string or a non-empty list of strings."
    if body.get("input_type") not in (None, "query", "document"):
        return "input_type must be None, 'query' or 'document'."
    if body.get("encoding_format") not in (None, "base64"):
        return "encoding_format must be None or 'base64'."
    dimensions = body.get("output_dimension")
    if dimensions is not None and (
        not isinstance(dimensions, int)
        or not 1 <= dimensions <= embedding.MAX_DIMENSIONS
    ):
        return "output_dimension is not supported for this value."
    return None
