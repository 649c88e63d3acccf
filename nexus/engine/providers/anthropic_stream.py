"""Anthropic Messages streams: decoding into canonical chunks, and observing passthrough."""

import logging
import time
from typing import Any

import orjson

from nexus.engine.canonical import Usage
from nexus.engine.errors import ProviderProtocolError, ProviderStatusError
from nexus.engine.providers.anthropic_format import (
    STATUS_BY_ERROR_TYPE,
    finish_reason_for,
    merge_usage_fields,
    openai_usage,
    usage_from_anthropic,
)
from nexus.engine.providers.base import StreamDecoder
from nexus.engine.sse import Event, SSEParser

logger = logging.getLogger(__name__)


def stream_error(provider: str, error: Any) -> ProviderStatusError:
    """Return the error for an `event: error` inside an Anthropic stream."""
    error = error if isinstance(error, dict) else {}
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or "no error message")
    return ProviderStatusError(
        f"Provider {provider} reported an error mid-stream: {message}",
        upstream_status=STATUS_BY_ERROR_TYPE.get(error_type, 500),
        error_type=error_type,
    )


def parse_event(event: Event, provider: str) -> dict[str, Any] | None:
    """Return the JSON object of an Anthropic stream event, None for an empty one."""
    if not event.data:
        return None
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise ProviderProtocolError(
            f"Provider {provider} streamed an event that is not JSON."
        ) from None
    if not isinstance(data, dict):
        raise ProviderProtocolError(
            f"Provider {provider} streamed an event that is not an object."
        )
    data.setdefault("type", event.event)
    return data


class _Block:
    """One open Anthropic content block in a stream."""

    def __init__(
        self, kind: str, tool_index: int = -1, initial_input: Any = None
    ) -> None:
        self.kind = kind
        self.tool_index = tool_index
        self.initial_input = initial_input
        self.arguments_sent = False
        self.thinking: list[str] = []
        self.signature = ""


class AnthropicStreamDecoder(StreamDecoder):
    """Decode Anthropic Messages SSE into OpenAI chat.completion.chunk objects.

    Tool calls are numbered 0, 1, ... in the order their tool_use blocks start,
    independent of the Anthropic block index, which also counts text and thinking
    blocks. Thinking text streams as reasoning_content; when a thinking block ends,
    its full text and signature follow as one thinking_blocks entry. The finish
    chunk and a usage-only chunk (choices []) follow message_stop.
    """

    def __init__(
        self, provider: str, response_tool: str | None = None, max_tokens: int = 0
    ) -> None:
        super().__init__()
        self.provider = provider
        self.response_tool = response_tool
        self.max_tokens = max_tokens
        self.parser = SSEParser()
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.blocks: dict[int, _Block] = {}
        self.tool_count = 0
        self.stop_reason: Any = None
        self.stop_sequence: Any = None
        self.raw_usage: dict[str, Any] = {}

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._decode(self.parser.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._decode(self.parser.finish())

    def _decode(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in events:
            data = parse_event(event, self.provider)
            if data is not None and not self.finished:
                chunks.extend(self._handle(data))
        return chunks

    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type")
        if kind == "message_start":
            return self._message_start(data.get("message"))
        if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
            index = data.get("index")
            if not isinstance(index, int):
                raise ProviderProtocolError(
                    f"Provider {self.provider} streamed {kind} without an integer index."
                )
            if kind == "content_block_start":
                return self._block_start(index, data.get("content_block"))
            if kind == "content_block_delta":
                return self._block_delta(index, data.get("delta"))
            return self._block_stop(index)
        if kind == "message_delta":
            delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
            self.stop_reason = delta.get("stop_reason", self.stop_reason)
            self.stop_sequence = delta.get("stop_sequence", self.stop_sequence)
            self._merge_usage(data.get("usage"))
            return []
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            raise stream_error(self.provider, data.get("error"))
        return []

    def _message_start(self, message: Any) -> list[dict[str, Any]]:
        message = message if isinstance(message, dict) else {}
        self.id = str(message.get("id") or "")
        self.model = str(message.get("model") or "")
        self._merge_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: int, block: Any) -> list[dict[str, Any]]:
        block = block if isinstance(block, dict) else {}
        kind = block.get("type")
        if (
            kind == "tool_use"
            and self.response_tool
            and block.get("name") == self.response_tool
        ):
            self.blocks[index] = _Block("response", initial_input=block.get("input"))
            return []
        if kind == "tool_use":
            state = _Block("tool", self.tool_count, block.get("input"))
            self.blocks[index] = state
            self.tool_count += 1
            call = {
                "index": state.tool_index,
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "redacted_thinking":
            self.blocks[index] = _Block("redacted")
            return [
                self._chunk(
                    {
                        "thinking_blocks": [
                            {
                                "type": "redacted_thinking",
                                "data": str(block.get("data") or ""),
                            }
                        ]
                    }
                )
            ]
        if kind in ("text", "thinking"):
            self.blocks[index] = _Block(kind)
            initial = block.get(kind)
            if isinstance(initial, str) and initial:
                return self._block_delta(
                    index, {"type": f"{kind}_delta", kind: initial}
                )
            return []
        self.blocks[index] = _Block("other")
        return []

    def _block_delta(self, index: int, delta: Any) -> list[dict[str, Any]]:
        state = self.blocks.get(index)
        if state is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            state.thinking.append(delta["thinking"])
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and isinstance(delta.get("signature"), str):
            state.signature += delta["signature"]
            return []
        if kind == "input_json_delta":
            # The first fragment of a tool block is usually empty and carries nothing.
            return self._arguments(state, delta.get("partial_json"))
        return []

    def _arguments(self, state: _Block, fragment: Any) -> list[dict[str, Any]]:
        if not isinstance(fragment, str) or not fragment:
            return []
        state.arguments_sent = True
        if state.kind == "response":
            return [self._chunk({"content": fragment})]
        if state.kind == "tool":
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": state.tool_index,
                                "function": {"arguments": fragment},
                            }
                        ]
                    }
                )
            ]
        return []

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        state = self.blocks.get(index)
        if state is None:
            return []
        if (
            state.kind in ("tool", "response")
            and not state.arguments_sent
            and state.initial_input
        ):
            # Some Anthropic-compatible servers send the whole input in the start event.
            return self._arguments(state, orjson.dumps(state.initial_input).decode())
        if state.kind == "thinking":
            block = {
                "type": "thinking",
                "thinking": "".join(state.thinking),
                "signature": state.signature,
            }
            return [self._chunk({"thinking_blocks": [block]})]
        return []

    def _message_stop(self) -> list[dict[str, Any]]:
        self.finished = True
        truncated = (
            bool(self.max_tokens) and self.usage.output_tokens >= self.max_tokens
        )
        if self.stop_reason == "tool_use" and self.tool_count == 0:
            finish_reason = "stop"
        else:
            finish_reason = finish_reason_for(
                self.stop_reason,
                truncated=truncated,
                has_tool_calls=self.tool_count > 0,
            )
        final = self._chunk({}, finish_reason)
        if isinstance(self.stop_sequence, str):
            final["choices"][0]["stop_reason"] = self.stop_sequence
        usage_chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": openai_usage(self.usage),
        }
        return [final, usage_chunk]

    def _merge_usage(self, usage: Any) -> None:
        merge_usage_fields(self.raw_usage, usage)
        if isinstance(usage, dict):
            self.usage = usage_from_anthropic(self.raw_usage)

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


class NativeStreamObserver:
    """Read usage and completion from an Anthropic stream passed through unchanged.

    The text the stream produced (text, thinking and tool input) is kept too, so a
    stream cut off before its final usage can be charged for what it sent.
    """

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.raw_usage: dict[str, Any] = {}
        self.usage = Usage()
        self.finished = False
        self.stop_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self.produced: list[str] = []

    def produced_text(self) -> str:
        return "".join(self.produced)

    def feed(self, data: bytes) -> None:
        """Observe data; malformed events are skipped, since the caller gets the bytes anyway."""
        for event in self.parser.feed(data):
            self._observe(event)

    def finish(self) -> None:
        """Observe an event left without its closing blank line."""
        for event in self.parser.finish():
            self._observe(event)

    def _observe(self, event: Event) -> None:
        try:
            data = parse_event(event, "anthropic")
        except ProviderProtocolError:
            return
        if data is None:
            return
        kind = data.get("type")
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self._merge_usage(data["message"].get("usage"))
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop_reason = delta["stop_reason"]
            self._merge_usage(data.get("usage"))
        elif kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                for name in ("text", "thinking", "partial_json"):
                    if isinstance(delta.get(name), str):
                        self.produced.append(delta[name])
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            self.error = (
                data.get("error") if isinstance(data.get("error"), dict) else {}
            )

    def _merge_usage(self, usage: Any) -> None:
        merge_usage_fields(self.raw_usage, usage)
        if isinstance(usage, dict):
            self.usage = usage_from_anthropic(self.raw_usage)
