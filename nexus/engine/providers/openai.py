"""OpenAI chat completions and embeddings, the base for OpenAI-compatible vendors."""

import base64
import struct
from typing import Any, ClassVar

import orjson

from nexus.engine.canonical import (
    ChatRequest,
    ChatResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    Usage,
)
from nexus.engine.errors import ProviderProtocolError
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ProviderAdapter, StreamDecoder, load_json
from nexus.engine.providers.openai_responses import (
    ResponsesStreamObserver,
    usage_from_responses,
)
from nexus.engine.sse import SSEParser


class OpenAIStreamDecoder(StreamDecoder):
    """Decode OpenAI `chat.completion.chunk` events; they are canonical already."""

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider
        self.parser = SSEParser()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._decode(self.parser.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._decode(self.parser.finish())

    def _decode(self, events: list) -> list[dict[str, Any]]:
        chunks = []
        for event in events:
            if event.data == "[DONE]":
                self.finished = True
                continue
            if not event.data:
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise ProviderProtocolError(
                    f"Provider {self.provider} streamed an event that is not JSON."
                ) from None
            if not isinstance(chunk, dict):
                raise ProviderProtocolError(
                    f"Provider {self.provider} streamed an event that is not an object."
                )
            if "error" in chunk and "choices" not in chunk:
                raise ProviderProtocolError(
                    f"Provider {self.provider} reported an error mid-stream."
                )
            if chunk.get("usage"):
                self.usage.merge(Usage.from_openai(chunk["usage"]))
            chunks.append(chunk)
        return chunks


class OpenAIAdapter(ProviderAdapter):
    """OpenAI's own API; compatible vendors subclass it with small rewrites."""

    name = "openai"
    native_format = "openai"
    # /v1/responses requests reach OpenAI unchanged; chat requests are already canonical.
    native_ingress_formats = frozenset({"responses"})
    default_base_url = "https://api.openai.com/v1"
    supports_embeddings = True
    # Whether the vendor accepts stream_options; without it streams report no usage.
    accepts_stream_options: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Vendors built on this codec speak OpenAI chat completions, not necessarily
        # the Responses API at the same base URL, so they opt in explicitly.
        if "native_ingress_formats" not in cls.__dict__:
            cls.native_ingress_formats = frozenset()

    def auth_headers(self) -> dict[str, str]:
        if not self.connection.credential:
            return {}
        return {"authorization": f"Bearer {self.connection.credential}"}

    def chat_url(self, upstream_model: str) -> str:
        return f"{self.base_url}/chat/completions"

    def rewrite_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Adjust the outgoing body for a vendor's dialect; OpenAI itself needs none."""
        return body

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        body = dict(request.body)
        body["model"] = upstream_model
        if request.stream and self.accepts_stream_options:
            # Ask for the usage chunk so streams are billed; the ingress drops it again
            # for callers that did not request it.
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        elif not request.stream:
            body.pop("stream_options", None)
        body["messages"] = [_wire_message(message) for message in body["messages"]]
        body = self.rewrite_chat_body(body)
        return self.json_request(
            self.chat_url(upstream_model), body, self.auth_headers()
        )

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        parsed = load_json(body, self.connection.name)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned a chat answer without choices."
            )
        return ChatResult(body=parsed, usage=Usage.from_openai(parsed.get("usage")))

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return OpenAIStreamDecoder(self.connection.name)

    def build_native_request(
        self, body: dict[str, Any], upstream_model: str
    ) -> UpstreamRequest:
        """Forward a caller's Responses API body unchanged except for the model."""
        payload = dict(body)
        payload["model"] = upstream_model
        headers = self.auth_headers()
        if payload.get("stream") is True:
            headers["accept"] = "text/event-stream"
        return self.json_request(f"{self.base_url}/responses", payload, headers)

    def native_stream_observer(self) -> ResponsesStreamObserver:
        """Return an observer of a passed-through Responses stream."""
        return ResponsesStreamObserver()

    def usage_from_native(self, body: dict[str, Any]) -> Usage:
        """Return the canonical usage of a passed-through Responses API answer."""
        return usage_from_responses(
            body.get("usage") if isinstance(body, dict) else None
        )

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        body = dict(request.body)
        body["model"] = upstream_model
        # Ask for floats; the ingress encodes base64 itself when the caller wants it.
        body["encoding_format"] = "float"
        return self.json_request(
            f"{self.base_url}/embeddings", body, self.auth_headers()
        )

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        parsed = load_json(body, self.connection.name)
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(data, list):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned embeddings without data."
            )
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        vectors = [
            decode_vector(item.get("embedding"), self.connection.name)
            for item in ordered
        ]
        return EmbeddingsResult(
            vectors=vectors,
            usage=Usage.from_openai(parsed.get("usage")),
            model=str(parsed.get("model", "")),
        )


# Fields the canonical form carries on messages for other providers (Anthropic thinking
# blocks and tool errors); OpenAI-format APIs do not accept them.
CANONICAL_ONLY_FIELDS = ("reasoning_content", "thinking_blocks", "is_error")


def _wire_message(message: dict[str, Any]) -> dict[str, Any]:
    if not any(name in message for name in CANONICAL_ONLY_FIELDS):
        return message
    return {
        name: value
        for name, value in message.items()
        if name not in CANONICAL_ONLY_FIELDS
    }


def decode_vector(value: Any, provider: str) -> list[float]:
    """Return a float list from a JSON array or base64 little-endian float32."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    raise ProviderProtocolError(
        f"Provider {provider} returned an embedding that is neither an array nor base64."
    )


def encode_vector_base64(vector: list[float]) -> str:
    """Return base64 of little-endian float32 values, as OpenAI sends them."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
