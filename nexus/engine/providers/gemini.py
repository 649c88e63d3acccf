"""Gemini API (Google AI Studio) codec: generateContent and batchEmbedContents.

Requests go to `{base_url}/{api_version}/models/{model}:{method}`, where base_url is
the host root (default https://generativelanguage.googleapis.com) and the
credential is an API key sent as `x-goog-api-key`. Streams use
`streamGenerateContent?alt=sse`. The request mapping is described in
gemini_request and the response carriers in gemini_format.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.canonical import (
    ChatRequest,
    ChatResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    Usage,
)
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ProviderAdapter, StreamDecoder, load_json
from nexus.engine.providers.gemini_format import (
    google_error,
    parse_generate_response,
    token_count,
)
from nexus.engine.providers.gemini_request import build_generate_body
from nexus.engine.providers.gemini_stream import GeminiStreamDecoder

logger = logging.getLogger(__name__)

# Characters per token used to estimate embedding input when Gemini reports no usage.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class GeminiOptions:
    """Options of a Gemini API connection.

    api_version is the path segment before `models/` (v1beta carries every
    feature the codec uses). full_json_schema sends tool and response schemas as
    parametersJsonSchema and responseJsonSchema, unchanged, instead of rewriting
    them into Gemini's OpenAPI subset. safety_settings is sent as the request's
    `safetySettings` list, for example
    `[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]`.
    """

    api_version: str = "v1beta"
    full_json_schema: bool = False
    safety_settings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_gemini_options(self)


def check_gemini_options(options: Any) -> None:
    """Raise ValueError when the Gemini options shared with Vertex AI are malformed."""
    if not isinstance(options.api_version, str) or not options.api_version:
        raise ValueError(
            f"api_version must be a non-empty string, got {options.api_version!r}"
        )
    if not isinstance(options.full_json_schema, bool):
        raise ValueError(
            f"full_json_schema must be true or false, got {options.full_json_schema!r}"
        )
    settings = options.safety_settings
    if not isinstance(settings, list) or not all(
        isinstance(item, dict) for item in settings
    ):
        raise ValueError("safety_settings must be a list of objects")


def output_limit(request: ChatRequest) -> int | None:
    """Return the caller's max_completion_tokens or max_tokens, if set."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def model_path(upstream_model: str) -> str:
    """Return the resource path of a model: `models/<id>` unless the id has a path."""
    return upstream_model if "/" in upstream_model else f"models/{upstream_model}"


def text_inputs(request: EmbeddingsRequest) -> list[str]:
    """Return the embedding inputs, or raise a 400 when they are token ids."""
    if not all(isinstance(item, str) for item in request.inputs):
        raise InvalidRequestError(
            "'input' must be text for Gemini embedding models; token ids are not "
            "supported.",
            param="input",
        )
    return request.inputs


def estimated_usage(texts: list[str]) -> Usage:
    """Return an estimate of the input tokens of texts, marked as not reported."""
    tokens = sum(max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) for text in texts)
    return Usage(input_tokens=tokens)


class GeminiAdapter(ProviderAdapter):
    """The Gemini API of Google AI Studio."""

    name = "gemini"
    native_format = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"
    supports_embeddings = True
    options_class = GeminiOptions
    options: GeminiOptions

    def auth_headers(self) -> dict[str, str]:
        if not self.connection.credential:
            return {}
        return {"x-goog-api-key": self.connection.credential}

    def model_url(self, upstream_model: str, method: str) -> str:
        version = self.options.api_version
        return f"{self.base_url}/{version}/{model_path(upstream_model)}:{method}"

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Translate a canonical chat request into a generateContent request."""
        body = build_generate_body(
            request,
            full_json_schema=self.options.full_json_schema,
            safety_settings=self.options.safety_settings,
        )
        headers = self.auth_headers()
        if request.stream:
            headers["accept"] = "text/event-stream"
            url = self.model_url(upstream_model, "streamGenerateContent?alt=sse")
        else:
            url = self.model_url(upstream_model, "generateContent")
        return self.json_request(url, body, headers)

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Translate a GenerateContentResponse into an OpenAI chat.completion."""
        parsed = load_json(body, self.connection.name)
        return parse_generate_response(
            parsed, self.connection.name, output_limit(request)
        )

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return GeminiStreamDecoder(self.connection.name, output_limit(request))

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return a batchEmbedContents request, which never carries encoding_format."""
        path = model_path(upstream_model)
        dimensions = request.body.get("dimensions")
        requests = []
        for text in text_inputs(request):
            item: dict[str, Any] = {
                "model": path,
                "content": {"parts": [{"text": text}]},
            }
            if dimensions is not None:
                item["outputDimensionality"] = dimensions
            requests.append(item)
        url = self.model_url(upstream_model, "batchEmbedContents")
        return self.json_request(url, {"requests": requests}, self.auth_headers())

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        """Read `embeddings[].values`, estimating usage when Gemini reports none."""
        parsed = load_json(body, self.connection.name)
        embeddings = parsed.get("embeddings") if isinstance(parsed, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned embeddings that do not "
                "match the inputs."
            )
        vectors = [_values(item, self.connection.name) for item in embeddings]
        metadata = parsed.get("usageMetadata")
        prompt_tokens = (
            token_count(metadata.get("promptTokenCount"))
            if isinstance(metadata, dict)
            else 0
        )
        if prompt_tokens:
            usage = Usage(input_tokens=prompt_tokens, reported=True)
        else:
            usage = estimated_usage(text_inputs(request))
        return EmbeddingsResult(vectors=vectors, usage=usage)

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Google's `{error: {code, message, status, details}}`."""
        return google_error(status, body, self.connection.name)


def _values(item: Any, provider: str) -> list[float]:
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list):
        raise ProviderProtocolError(
            f"Provider {provider} returned an embedding without values."
        )
    return values
