"""Voyage AI embeddings (`{base_url}/embeddings`); Voyage serves no chat.

base_url defaults to `https://api.voyageai.com/v1`; the credential is the API key,
sent as a Bearer token. Vectors are requested as base64 (little-endian float32),
which is a quarter of the JSON size, and decoded here; the OpenAI ingress encodes
them again for callers that asked for base64. `dimensions` becomes
output_dimension, and input_type comes from the request body when it is query or
document, else from the connection option.
"""

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.engine.canonical import EmbeddingsRequest, EmbeddingsResult, Usage
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ERROR_TYPES, ProviderAdapter, load_json
from nexus.engine.providers.openai import decode_vector

logger = logging.getLogger(__name__)

INPUT_TYPES = ("query", "document")


@dataclass(frozen=True)
class VoyageOptions:
    """Options of a Voyage connection.

    input_type (query, document or empty for none) is sent when the request names
    none. truncation sets whether Voyage shortens inputs over the model's context
    length instead of rejecting them.
    """

    input_type: str = ""
    truncation: bool = True

    def __post_init__(self) -> None:
        if self.input_type not in ("", *INPUT_TYPES):
            raise ValueError(
                f"input_type must be query, document or empty, got {self.input_type!r}"
            )
        if not isinstance(self.truncation, bool):
            raise ValueError(f"truncation must be a boolean, got {self.truncation!r}")


class VoyageAdapter(ProviderAdapter):
    """Voyage AI's embeddings API."""

    name = "voyage"
    native_format = "voyage"
    default_base_url = "https://api.voyageai.com/v1"
    supports_chat = False
    supports_embeddings = True
    options_class = VoyageOptions
    options: VoyageOptions

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return a Voyage embeddings request for base64 float32 vectors."""
        if not all(isinstance(item, str) for item in request.inputs):
            raise InvalidRequestError(
                "'input' must be text for Voyage models; token ids are not supported.",
                param="input",
            )
        body: dict[str, Any] = {
            "input": request.inputs,
            "model": upstream_model,
            "truncation": self.options.truncation,
            "encoding_format": "base64",
        }
        input_type = request.body.get("input_type") or self.options.input_type
        if input_type:
            if input_type not in INPUT_TYPES:
                raise InvalidRequestError(
                    "'input_type' must be query or document for Voyage models.",
                    param="input_type",
                )
            body["input_type"] = input_type
        if request.body.get("dimensions") is not None:
            body["output_dimension"] = request.body["dimensions"]
        headers = {}
        if self.connection.credential:
            headers["authorization"] = f"Bearer {self.connection.credential}"
        return self.json_request(f"{self.base_url}/embeddings", body, headers)

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        """Decode the base64 vectors in index order and read total_tokens."""
        parsed = load_json(body, self.connection.name)
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(data, list) or len(data) != len(request.inputs):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned embeddings that do not "
                "match the inputs."
            )
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        vectors = [
            decode_vector(item.get("embedding"), self.connection.name)
            for item in ordered
        ]
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else {}
        tokens = usage.get("total_tokens")
        return EmbeddingsResult(
            vectors=vectors,
            usage=Usage(
                input_tokens=tokens if isinstance(tokens, int) else 0,
                reported=isinstance(tokens, int),
            ),
            model=str(parsed.get("model") or ""),
        )

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Voyage's `{detail}` error."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {"detail": body[:200].decode("utf-8", "replace").strip()}
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: "
            f"{detail or 'no error message'}",
            upstream_status=status,
            error_type=ERROR_TYPES.get(status, "api_error"),
        )
