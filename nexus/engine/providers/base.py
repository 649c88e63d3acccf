"""The base every provider codec builds on.

A codec maps shapes only: it turns a canonical request into the provider's wire
format and the provider's answers, streams and errors back into canonical form.
Sending, timeouts and pooling belong to the HTTP client and the gateway.
"""

import logging
import math
from collections.abc import AsyncIterator, Mapping
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
from nexus.engine.http import UpstreamClient, UpstreamRequest
from nexus.engine.snapshot import ConnectionEntry

logger = logging.getLogger(__name__)

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


# Characters per token in English text, OpenAI's rule of thumb; used only where a
# provider reports no token count.
CHARS_PER_TOKEN = 4

_unknown_finish_reasons: set[tuple[str, str]] = set()


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


class BufferedResponse:
    """An upstream answer already read into memory.

    It offers the part of aiohttp's ClientResponse that the gateway uses (status,
    headers, read, content.iter_any and async with), so codecs whose exchange takes
    several HTTP calls can return the combined answer from ProviderAdapter.send.
    """

    def __init__(
        self, status: int, body: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content = self

    async def read(self) -> bytes:
        return self.body

    async def iter_any(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body

    def release(self) -> None:
        """Do nothing, because the body keeps no connection open."""

    async def __aenter__(self) -> "BufferedResponse":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class ProviderAdapter:
    """Codec for one provider type; one instance serves one connection."""

    name: ClassVar[str] = ""
    native_format: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    supports_chat: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False
    # The dataclass a connection's `options` JSON is read into; fields need defaults.
    options_class: ClassVar[type] = NoOptions
    # Whether a connection must set its own base URL (there is no public endpoint).
    requires_base_url: ClassVar[bool] = False
    # Ingress formats whose requests this codec can forward unchanged. Such codecs
    # implement build_native_request, native_stream_observer and usage_from_native.
    native_ingress_formats: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, connection: ConnectionEntry) -> None:
        self.connection = connection
        self.base_url = (connection.base_url or self.default_base_url).rstrip("/")
        self.options = self.parse_options(connection.options)

    @classmethod
    def check_connection(cls, base_url: str, options: Any) -> None:
        """Raise OptionsError if a connection's settings cannot work with this type."""
        if cls.requires_base_url and not base_url:
            raise OptionsError(f"Provider type {cls.name} needs a base URL.")
        cls.parse_options(options)

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
            raise OptionsError(
                f"Invalid options for provider type {cls.name}: {exc}"
            ) from None

    def accepts_native(self, ingress_format: str) -> bool:
        """Return whether a request in ingress_format can skip translation."""
        return ingress_format in self.native_ingress_formats

    async def authorize(self, request: UpstreamRequest) -> None:
        """Add credentials that need I/O to obtain (tokens, signatures); default none."""

    async def send(
        self, client: UpstreamClient, request: UpstreamRequest, *, timeout: float
    ) -> Any:
        """Send an authorized request and return the response once its headers arrived.

        The default is one HTTP call. Codecs whose exchange takes several calls
        (polling, one call per input) override this and may return a
        BufferedResponse; timeout bounds each call.
        """
        return await client.send(request, timeout=timeout)

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
        """Return the error for a non-2xx response. Codecs override it to read their own shape."""
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


def finish_reason_from(
    table: Mapping[str, str],
    value: Any,
    *,
    provider: str,
    has_tool_calls: bool,
    truncated: bool = False,
) -> str:
    """Map a provider's stop value to an OpenAI finish_reason through table.

    An unknown value is logged once per provider and value. It becomes tool_calls
    when the answer holds tool calls, length when the output reached the token
    limit, and stop otherwise.
    """
    if value in table:
        return table[value]
    if value is not None and (provider, str(value)) not in _unknown_finish_reasons:
        _unknown_finish_reasons.add((provider, str(value)))
        logger.warning("unknown finish reason %s", value, extra={"provider": provider})
    if has_tool_calls:
        return "tool_calls"
    return "length" if truncated else "stop"


def estimate_tokens(text: str) -> int:
    """Estimate the token count of text for providers that report none; at least 1."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


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
