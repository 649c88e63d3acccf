"""Anthropic Messages API codec.

Requests go to `{base_url}/v1/messages`, where base_url is the host root. Canonical
(OpenAI chat) requests are translated by anthropic_request, where AnthropicOptions
lists the connection options, and streams are decoded by anthropic_stream. Same-format
traffic from the `/v1/messages` ingress can skip the translation through
`build_native_request`, `NativeStreamObserver` and `usage_from_native`.
"""

import logging
import time
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, Usage
from nexus.engine.errors import ProviderProtocolError, ProviderStatusError
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.anthropic_format import (
    error_type_for,
    finish_reason_for,
    openai_usage,
    usage_from_anthropic,
)
from nexus.engine.providers.anthropic_request import (
    AnthropicOptions,
    build_messages_body,
    max_tokens_for,
    response_format_tool,
)
from nexus.engine.providers.anthropic_stream import (
    AnthropicStreamDecoder,
    NativeStreamObserver,
)
from nexus.engine.providers.base import ProviderAdapter, StreamDecoder, load_json

__all__ = [
    "AnthropicAdapter",
    "AnthropicStreamDecoder",
    "NativeStreamObserver",
    "usage_from_native",
]

logger = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter(ProviderAdapter):
    """Anthropic's Messages API."""

    name = "anthropic"
    native_format = "anthropic"
    native_ingress_formats = frozenset({"anthropic"})
    default_base_url = "https://api.anthropic.com"
    options_class = AnthropicOptions
    options: AnthropicOptions

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.connection.credential:
            headers["x-api-key"] = self.connection.credential
        return headers

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Translate a canonical chat request into an Anthropic Messages request."""
        body = build_messages_body(request, upstream_model, self.options)
        return self.json_request(self.messages_url, body, self._headers(request.stream))

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Translate an Anthropic message into an OpenAI chat.completion."""
        parsed = load_json(body, self.connection.name)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("content"), list):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned a message without content."
            )

        message = message_from_blocks(parsed["content"], response_format_tool(request))
        usage = usage_from_anthropic(parsed.get("usage"))
        limit = max_tokens_for(request, self.options.default_max_tokens)
        finish_reason = _finish_reason(parsed.get("stop_reason"), message, usage, limit)
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "finish_reason": finish_reason,
            "logprobs": None,
        }
        if isinstance(parsed.get("stop_sequence"), str):
            choice["stop_reason"] = parsed["stop_sequence"]

        completion = {
            "id": str(parsed.get("id") or ""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(parsed.get("model") or ""),
            "choices": [choice],
            "usage": openai_usage(usage),
        }
        return ChatResult(body=completion, usage=usage)

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        limit = max_tokens_for(request, self.options.default_max_tokens)
        return AnthropicStreamDecoder(
            self.connection.name, response_format_tool(request), limit
        )

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Anthropic's `{type: error, error: {type, message}}` into an error.

        The status and Anthropic's error type are kept, so 429 (rate_limit_error)
        and 529 (overloaded_error) stay distinguishable from server errors.
        """
        error_type, message = _error_fields(body)
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: {message}",
            upstream_status=status,
            error_type=error_type or error_type_for(status),
        )

    def build_native_request(
        self, body: dict[str, Any], upstream_model: str, *, beta: str | None = None
    ) -> UpstreamRequest:
        """Forward a caller's Anthropic body unchanged except for the model.

        beta is the caller's `anthropic-beta` header, forwarded when given.
        """
        payload = dict(body)
        payload["model"] = upstream_model
        headers = self._headers(payload.get("stream") is True)
        if beta:
            headers["anthropic-beta"] = beta
        return self.json_request(self.messages_url, payload, headers)

    def native_stream_observer(self) -> NativeStreamObserver:
        """Return an observer of a passed-through stream's usage and end."""
        return NativeStreamObserver()

    def usage_from_native(self, body: dict[str, Any]) -> Usage:
        """Return the canonical usage of a passed-through Anthropic message."""
        return usage_from_native(body)

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = self.auth_headers()
        if stream:
            headers["accept"] = "text/event-stream"
        return headers


def message_from_blocks(blocks: list[Any], response_tool: str | None) -> dict[str, Any]:
    """Return the OpenAI assistant message for Anthropic content blocks.

    The input of the response_format tool becomes text content; other tool_use
    blocks become tool_calls. Thinking goes to reasoning_content and thinking_blocks.
    """
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif (
            kind == "tool_use" and response_tool and block.get("name") == response_tool
        ):
            texts.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
            thinking_blocks.append(
                {
                    "type": "thinking",
                    "thinking": str(block.get("thinking") or ""),
                    "signature": str(block.get("signature") or ""),
                }
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append(
                {"type": "redacted_thinking", "data": str(block.get("data") or "")}
            )
        else:
            logger.debug("skipping Anthropic content block of type %s", kind)

    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["reasoning_content"] = "\n".join(reasoning)
        message["thinking_blocks"] = thinking_blocks
    return message


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {
            "name": str(block.get("name") or ""),
            "arguments": orjson.dumps(block.get("input") or {}).decode(),
        },
    }


def _finish_reason(
    stop_reason: Any, message: dict[str, Any], usage: Usage, max_tokens: int
) -> str:
    has_tool_calls = bool(message.get("tool_calls"))
    if stop_reason == "tool_use" and not has_tool_calls:
        # Only the response_format tool was called, and its input is the message content.
        return "stop"
    # The limit sent upstream may exceed this when thinking raised it, so an unknown
    # stop_reason on a thinking request may read as stop where it was truncated.
    truncated = usage.output_tokens >= max_tokens
    return finish_reason_for(
        stop_reason, truncated=truncated, has_tool_calls=has_tool_calls
    )


def _error_fields(body: bytes) -> tuple[str, str]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return "", text or "no error message"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return "", "no error message"
    return str(error.get("type") or ""), str(error.get("message") or "no error message")


def usage_from_native(body: dict[str, Any]) -> Usage:
    """Return the canonical usage of a non-streamed Anthropic message."""
    return usage_from_anthropic(body.get("usage") if isinstance(body, dict) else None)
