"""The base every provider codec builds on.

A codec maps shapes only: it turns a canonical request into the provider's wire
format and the provider's answers, streams and errors back into canonical form.
Sending, timeouts and pooling belong to the HTTP client and the gateway.
"""

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import orjson

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
from nexus.engine.snapshot import ConnectionEntry

# OpenAI error types by HTTP status, used where a provider's own type is missing.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "api_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class OptionsError(ValueError):
    """A provider connection's options do not fit its provider type."""


@dataclass(frozen=True)
class NoOptions:
    """Options of a provider type that has none."""


class StreamDecoder:
    """Turn a provider's streamed bytes into canonical chunks, keeping usage."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.finished = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Return the canonical chunks completed by data."""
        raise NotImplementedError

    def finish(self) -> list[dict[str, Any]]:
        """Return chunks still buffered when the upstream closed the stream."""
        return []


class ProviderAdapter:
    """Codec for one provider type; one instance serves one connection."""

    name: ClassVar[str] = ""
    native_format: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    supports_chat: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False
    # The dataclass a connection's `options` JSON is read into; fields need defaults.
    options_class: ClassVar[type] = NoOptions

    def __init__(self, connection: ConnectionEntry) -> None:
        self.connection = connection
        self.base_url = (connection.base_url or self.default_base_url).rstrip("/")
        self.options = self.parse_options(connection.options)

    @classmethod
    def parse_options(cls, options: Any) -> Any:
        """Read a connection's options into options_class, or raise OptionsError."""
        if not isinstance(options, dict):
            raise OptionsError("Provider options must be a JSON object.")
        known = {item.name: item for item in fields(cls.options_class)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise OptionsError(
                f"Unknown option(s) for provider type {cls.name}: {', '.join(unknown)}. "
                f"Known options: {', '.join(sorted(known)) or 'none'}."
            )
        try:
            return cls.options_class(**options)
        except (TypeError, ValueError) as exc:
            raise OptionsError(f"Invalid options for provider type {cls.name}: {exc}") from None

    async def authorize(self, request: UpstreamRequest) -> None:
        """Add credentials that need I/O to obtain (tokens, signatures); default none."""

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        raise InvalidRequestError(
            f"Provider type {self.name} does not serve chat completions."
        )

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        raise NotImplementedError

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        raise NotImplementedError

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        raise InvalidRequestError(
            f"Provider type {self.name} does not serve embeddings."
        )

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        raise NotImplementedError

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Return the error for a non-2xx answer; codecs override to read their own shape."""
        message, error_type = _generic_error_fields(body)
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: {message}",
            upstream_status=status,
            error_type=error_type or ERROR_TYPES.get(status, "api_error"),
        )

    def json_request(
        self, url: str, payload: Any, headers: dict[str, str]
    ) -> UpstreamRequest:
        """Return a POST of payload as JSON with the given headers."""
        all_headers = {"content-type": "application/json", "accept": "application/json"}
        all_headers.update(headers)
        return UpstreamRequest("POST", url, all_headers, orjson.dumps(payload))


def load_json(body: bytes, provider: str) -> Any:
    """Parse a provider's JSON answer or raise a protocol error naming the provider."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderProtocolError(
            f"Provider {provider} returned a body that is not JSON."
        ) from None


def _generic_error_fields(body: bytes) -> tuple[str, str]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return (text or "no error message"), ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "no error message"), str(
            error.get("type") or ""
        )
    if isinstance(error, str):
        return error, ""
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return parsed["message"], ""
    return "no error message", ""
