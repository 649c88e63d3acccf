"""Encoding of canonical chat completions and streams as Anthropic Messages responses."""

import logging
import uuid
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, Usage
from nexus.engine.errors import NexusError
from nexus.engine.ingress.base import StreamEncoder
from nexus.engine.providers.anthropic_format import (
    anthropic_usage,
    error_type_for,
    stop_reason_for,
    usage_from_openai,
)
from nexus.engine.sse import encode_event

logger = logging.getLogger(__name__)


def anthropic_error_body(error: NexusError) -> dict[str, Any]:
    """Return Anthropic's error object for error; 413 and 529 keep their own types."""
    return {
        "type": "error",
        "error": {
            "type": error_type_for(error.status, error.type),
            "message": error.message,
        },
    }


def message_id(upstream_id: Any) -> str:
    """Return upstream_id if it is an Anthropic message id, else a new one."""
    if isinstance(upstream_id, str) and upstream_id.startswith("msg_"):
        return upstream_id
    return f"msg_{uuid.uuid4().hex[:24]}"


def content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Return Anthropic content blocks for a canonical assistant message."""
    blocks: list[dict[str, Any]] = []
    thinking_blocks = message.get("thinking_blocks")
    if isinstance(thinking_blocks, list) and thinking_blocks:
        blocks.extend(block for block in thinking_blocks if isinstance(block, dict))
    elif (
        isinstance(message.get("reasoning_content"), str)
        and message["reasoning_content"]
    ):
        # Reasoning from other providers has no signature; Anthropic's SDK still needs the field.
        blocks.append(
            {
                "type": "thinking",
                "thinking": message["reasoning_content"],
                "signature": "",
            }
        )

    content = message.get("content")
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for part in content:
            if (
                isinstance(part, dict)
                and isinstance(part.get("text"), str)
                and part["text"]
            ):
                blocks.append({"type": "text", "text": part["text"]})
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        blocks.append({"type": "text", "text": message["refusal"]})

    for call in message.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            blocks.append(tool_use_block(call))
    return blocks


def tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    """Return the Anthropic tool_use block for an OpenAI tool call."""
    function = call["function"]
    return {
        "type": "tool_use",
        "id": str(call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"),
        "name": str(function.get("name") or ""),
        "input": _tool_input(function.get("arguments")),
    }


def _tool_input(arguments: Any) -> dict[str, Any]:
    if not arguments:
        return {}
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    # NOTE: a model can emit arguments that are not a JSON object; Anthropic's shape
    # needs an object, so the call goes out with empty input.
    logger.warning("tool call arguments are not a JSON object, sending empty input")
    return {}


class AnthropicStreamEncoder(StreamEncoder):
    """Write canonical chunks as the Anthropic Messages event sequence.

    Text, thinking and each tool call get their own content block, numbered in the
    order they open. message_start carries zero usage because canonical streams
    report usage at the end; message_delta carries the totals, which Anthropic's
    SDKs take as cumulative counts.
    """

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self.started = False
        self.next_index = 0
        self.open_kind = ""
        self.open_index = -1
        self.thinking_sent = ""
        self.tool_blocks: dict[int, int] = {}
        self.finish_reason: Any = None
        self.stop_sequence: str | None = None
        self.usage = Usage()

    def encode(self, chunk: dict[str, Any]) -> bytes:
        events: list[bytes] = []
        if not self.started:
            events.append(self._message_start(chunk.get("id")))
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_from_openai(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            events.extend(self._delta(delta))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                if isinstance(choice.get("stop_reason"), str):
                    self.stop_sequence = choice["stop_reason"]
        return b"".join(events)

    def finish(self) -> bytes:
        events: list[bytes] = []
        if not self.started:
            events.append(self._message_start(None))
        events.extend(self._close())
        stop_reason = stop_reason_for(self.finish_reason, self.stop_sequence)
        message_delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason,
                "stop_sequence": self.stop_sequence
                if stop_reason == "stop_sequence"
                else None,
            },
            "usage": anthropic_usage(self.usage),
        }
        events.append(_event("message_delta", message_delta))
        events.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(events)

    def error(self, error: NexusError) -> bytes:
        return _event("error", anthropic_error_body(error))

    def _message_start(self, upstream_id: Any) -> bytes:
        self.started = True
        message = {
            "id": message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self.request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            events.extend(self._thinking_text(reasoning))
        for block in delta.get("thinking_blocks") or []:
            if isinstance(block, dict):
                events.extend(self._thinking_block(block))
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                if self.open_kind != "text":
                    events.extend(self._open("text", {"type": "text", "text": ""}))
                events.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                events.extend(self._tool_call(call))
        return events

    def _thinking_text(self, text: str) -> list[bytes]:
        events = []
        if self.open_kind != "thinking":
            events.extend(
                self._open(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                )
            )
        self.thinking_sent += text
        events.append(self._block_delta({"type": "thinking_delta", "thinking": text}))
        return events

    def _thinking_block(self, block: dict[str, Any]) -> list[bytes]:
        if block.get("type") == "redacted_thinking":
            events = self._open(
                "redacted_thinking",
                {"type": "redacted_thinking", "data": str(block.get("data") or "")},
            )
            return events + self._close()
        text = str(block.get("thinking") or "")
        events = []
        if self.open_kind != "thinking" or not text.startswith(self.thinking_sent):
            events.extend(
                self._open(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                )
            )
        remainder = text[len(self.thinking_sent) :]
        if remainder:
            events.extend(self._thinking_text(remainder))
        if block.get("signature"):
            events.append(
                self._block_delta(
                    {"type": "signature_delta", "signature": str(block["signature"])}
                )
            )
        return events + self._close()

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        tool_index = call.get("index", 0)
        function = (
            call.get("function") if isinstance(call.get("function"), dict) else {}
        )
        if tool_index not in self.tool_blocks:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            events.extend(self._open("tool_use", block))
            self.tool_blocks[tool_index] = self.open_index
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not arguments:
            return events
        if self.tool_blocks[tool_index] != self.open_index:
            # TODO: argument fragments of a tool call that arrive after the next block
            # opened are dropped, because Anthropic events cannot reopen a block.
            logger.warning("dropping late arguments of tool call %s", tool_index)
            return events
        events.append(
            self._block_delta({"type": "input_json_delta", "partial_json": arguments})
        )
        return events

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self.open_kind = kind
        self.open_index = self.next_index
        self.next_index += 1
        self.thinking_sent = ""
        start = {
            "type": "content_block_start",
            "index": self.open_index,
            "content_block": block,
        }
        events.append(_event("content_block_start", start))
        return events

    def _close(self) -> list[bytes]:
        if not self.open_kind:
            return []
        stop = {"type": "content_block_stop", "index": self.open_index}
        self.open_kind = ""
        self.open_index = -1
        return [_event("content_block_stop", stop)]

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.open_index, "delta": delta},
        )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(data), name)
