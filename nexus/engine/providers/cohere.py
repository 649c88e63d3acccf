"""Cohere API v2: chat (`/v2/chat`) and embeddings (`/v2/embed`).

base_url is the host root (default `https://api.cohere.com`); the credential is the
API key, sent as a Bearer token. Requests are translated by cohere_request, and
responses and streams are read here. The assistant's tool_plan is returned as
reasoning_content.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

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
from nexus.engine.providers.base import (
    ERROR_TYPES,
    ProviderAdapter,
    StreamDecoder,
    finish_reason_from,
    load_json,
)
from nexus.engine.providers.cohere_request import build_chat_body
from nexus.engine.sse import Event, SSEParser

logger = logging.getLogger(__name__)

# Cohere finish_reason to OpenAI finish_reason. ERROR_LIMIT means the context
# window was reached; ERROR_TOXIC means the output was blocked.
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}

# Finish reasons that mean generation failed, so the response becomes an error.
FAILURES = {"ERROR": 500, "TIMEOUT": 504, "USER_CANCEL": 499}

# Cohere returns 498 for an invalid API key.
STATUS_OVERRIDES = {498: 401}

INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


@dataclass(frozen=True)
class CohereOptions:
    """Options of a Cohere connection.

    input_type is the embed input_type sent when the request names none (Cohere
    requires one for v3 and newer models); a request may set `input_type` itself.
    """

    input_type: str = "search_document"

    def __post_init__(self) -> None:
        if self.input_type not in INPUT_TYPES:
            raise ValueError(
                f"input_type must be one of {', '.join(INPUT_TYPES)}, "
                f"got {self.input_type!r}"
            )


class CohereAdapter(ProviderAdapter):
    """Cohere's v2 API."""

    name = "cohere"
    native_format = "cohere"
    default_base_url = "https://api.cohere.com"
    supports_embeddings = True
    options_class = CohereOptions
    options: CohereOptions

    def auth_headers(self) -> dict[str, str]:
        if not self.connection.credential:
            return {}
        return {"authorization": f"Bearer {self.connection.credential}"}

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Translate a canonical chat request into a Cohere v2 chat request."""
        body = build_chat_body(request, upstream_model)
        headers = self.auth_headers()
        if request.stream:
            headers["accept"] = "text/event-stream"
        return self.json_request(f"{self.base_url}/v2/chat", body, headers)

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Translate a Cohere chat answer into an OpenAI chat.completion."""
        parsed = load_json(body, self.connection.name)
        message = parsed.get("message") if isinstance(parsed, dict) else None
        if not isinstance(message, dict):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned a chat answer without a "
                "message."
            )
        finish_reason = _finish_reason(
            self.connection.name,
            parsed.get("finish_reason"),
            has_tool_calls=bool(message.get("tool_calls")),
        )
        usage = usage_from_cohere(parsed.get("usage"))
        completion = {
            "id": str(parsed.get("id") or ""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": _openai_message(message),
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": usage.to_openai(),
        }
        return ChatResult(body=completion, usage=usage)

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return CohereStreamDecoder(self.connection.name)

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Cohere's `{id, message}` error; 498 (invalid key) becomes 401."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {"message": body[:200].decode("utf-8", "replace").strip()}
        message = parsed.get("message") if isinstance(parsed, dict) else None
        mapped = STATUS_OVERRIDES.get(status, status)
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: "
            f"{message or 'no error message'}",
            upstream_status=mapped,
            error_type=ERROR_TYPES.get(mapped, "api_error"),
        )

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return a v2 embed request for float vectors."""
        if not all(isinstance(item, str) for item in request.inputs):
            raise InvalidRequestError(
                "'input' must be text for Cohere models; token ids are not supported.",
                param="input",
            )
        input_type = request.body.get("input_type", self.options.input_type)
        if input_type not in INPUT_TYPES:
            raise InvalidRequestError(
                f"'input_type' must be one of {', '.join(INPUT_TYPES)}.",
                param="input_type",
            )
        body: dict[str, Any] = {
            "model": upstream_model,
            "texts": request.inputs,
            "input_type": input_type,
            "embedding_types": ["float"],
        }
        if request.body.get("dimensions") is not None:
            body["output_dimension"] = request.body["dimensions"]
        return self.json_request(f"{self.base_url}/v2/embed", body, self.auth_headers())

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        """Read `embeddings.float` and the billed input tokens."""
        parsed = load_json(body, self.connection.name)
        embeddings = parsed.get("embeddings") if isinstance(parsed, dict) else None
        vectors = embeddings.get("float") if isinstance(embeddings, dict) else None
        if not isinstance(vectors, list) or len(vectors) != len(request.inputs):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned embeddings that do not "
                "match the inputs."
            )
        meta = parsed.get("meta") if isinstance(parsed.get("meta"), dict) else {}
        billed = meta.get("billed_units") if isinstance(meta, dict) else None
        tokens = _count((billed or {}).get("input_tokens"))
        return EmbeddingsResult(
            vectors=vectors,
            usage=Usage(input_tokens=tokens, reported=bool(billed)),
            model=request.model,
        )


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    texts = []
    reasoning = []
    for part in message.get("content") or []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "thinking" and isinstance(part.get("thinking"), str):
            reasoning.append(part["thinking"])
    if isinstance(message.get("tool_plan"), str) and message["tool_plan"]:
        reasoning.append(message["tool_plan"])
    tool_calls = [
        _tool_call(call)
        for call in message.get("tool_calls") or []
        if isinstance(call, dict)
    ]
    converted: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        converted["tool_calls"] = tool_calls
    if reasoning:
        converted["reasoning_content"] = "\n".join(reasoning)
    return converted


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments or {}).decode()
    return {
        "id": str(call.get("id") or ""),
        "type": "function",
        "function": {"name": str(function.get("name") or ""), "arguments": arguments},
    }


def _finish_reason(provider: str, value: Any, *, has_tool_calls: bool) -> str:
    if value in FAILURES:
        raise ProviderStatusError(
            f"Provider {provider} ended generation with finish_reason {value}.",
            upstream_status=FAILURES[value],
            error_type="api_error",
        )
    return finish_reason_from(
        FINISH_REASONS,
        value,
        provider="cohere",
        has_tool_calls=has_tool_calls,
    )


def usage_from_cohere(usage: Any) -> Usage:
    """Read Cohere usage; billed units are used where present, else model tokens."""
    if not isinstance(usage, dict):
        return Usage()
    billed = (
        usage.get("billed_units") if isinstance(usage.get("billed_units"), dict) else {}
    )
    tokens = usage.get("tokens") if isinstance(usage.get("tokens"), dict) else {}
    input_tokens = _count(billed.get("input_tokens")) or _count(
        tokens.get("input_tokens")
    )
    output_tokens = _count(billed.get("output_tokens")) or _count(
        tokens.get("output_tokens")
    )
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=_count(usage.get("cached_tokens")),
        reported=True,
    )


def _count(value: Any) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return 0


class CohereStreamDecoder(StreamDecoder):
    """Decode Cohere v2 chat SSE into OpenAI chat.completion.chunk objects.

    Tool calls are numbered 0, 1, ... in the order of their tool-call-start events.
    message-end carries the finish reason and usage and ends the stream.
    """

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider
        self.parser = SSEParser()
        self.id = ""
        self.created = int(time.time())
        self.tool_count = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._decode(self.parser.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._decode(self.parser.finish())

    def _decode(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in events:
            if not event.data or self.finished:
                continue
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise ProviderProtocolError(
                    f"Provider {self.provider} streamed an event that is not JSON."
                ) from None
            if isinstance(data, dict):
                chunks.extend(self._handle(data.get("type") or event.event, data))
        return chunks

    def _handle(self, kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        message = ((data.get("delta") or {}).get("message")) or {}
        if kind == "message-start":
            self.id = str(data.get("id") or "")
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind in ("content-start", "content-delta"):
            content = message.get("content") or {}
            if content.get("text"):
                return [self._chunk({"content": content["text"]})]
            if content.get("thinking"):
                return [self._chunk({"reasoning_content": content["thinking"]})]
            return []
        if kind == "tool-plan-delta" and message.get("tool_plan"):
            return [self._chunk({"reasoning_content": message["tool_plan"]})]
        if kind == "tool-call-start":
            return self._tool_start(message.get("tool_calls") or {})
        if kind == "tool-call-delta":
            function = (message.get("tool_calls") or {}).get("function") or {}
            if not function.get("arguments") or not self.tool_count:
                return []
            delta = {
                "index": self.tool_count - 1,
                "function": {"arguments": function["arguments"]},
            }
            return [self._chunk({"tool_calls": [delta]})]
        if kind == "message-end":
            return self._message_end(data.get("delta") or {})
        if kind == "error" or data.get("error"):
            raise ProviderStatusError(
                f"Provider {self.provider} reported an error mid-stream: "
                f"{data.get('message') or data.get('error') or 'no error message'}",
                upstream_status=500,
                error_type="api_error",
            )
        return []

    def _tool_start(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        function = call.get("function") or {}
        index = self.tool_count
        self.tool_count += 1
        start = {
            "index": index,
            "id": str(call.get("id") or ""),
            "type": "function",
            "function": {"name": str(function.get("name") or ""), "arguments": ""},
        }
        chunks = [self._chunk({"tool_calls": [start]})]
        if function.get("arguments"):
            delta = {"index": index, "function": {"arguments": function["arguments"]}}
            chunks.append(self._chunk({"tool_calls": [delta]}))
        return chunks

    def _message_end(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        value = delta.get("finish_reason")
        finish_reason = _finish_reason(
            self.provider, value, has_tool_calls=self.tool_count > 0
        )
        self.usage = usage_from_cohere(delta.get("usage"))
        self.finished = True
        usage_chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": "",
            "choices": [],
            "usage": self.usage.to_openai(),
        }
        return [self._chunk({}, finish_reason), usage_chunk]

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
