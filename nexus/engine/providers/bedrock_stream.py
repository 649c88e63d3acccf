"""Bedrock ConverseStream: AWS event-stream frames decoded into canonical chunks.

The frames are decoded by botocore's EventStreamBuffer, which checks the prelude and
message CRC32 checksums. Each event message carries its kind in the `:event-type`
header and a JSON payload; `:message-type` exception frames carry an error.
"""

import logging
import time
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from nexus.engine.errors import ProviderProtocolError, ProviderStatusError
from nexus.engine.providers.anthropic_format import openai_usage
from nexus.engine.providers.base import StreamDecoder
from nexus.engine.providers.bedrock_response import (
    finish_reason_for,
    usage_from_converse,
)

logger = logging.getLogger(__name__)

# HTTP status and OpenAI error type for exceptions sent inside a stream, keyed by
# the `:exception-type` header.
STREAM_EXCEPTIONS = {
    "validationException": (400, "invalid_request_error"),
    "throttlingException": (429, "rate_limit_error"),
    "modelTimeoutException": (408, "api_error"),
    "modelStreamErrorException": (424, "api_error"),
    "internalServerException": (500, "api_error"),
    "serviceUnavailableException": (503, "api_error"),
}


class _Block:
    """One open Converse content block in a stream."""

    def __init__(self, kind: str, tool_index: int = -1) -> None:
        self.kind = kind
        self.tool_index = tool_index
        self.reasoning: list[str] = []
        self.signature = ""


class BedrockStreamDecoder(StreamDecoder):
    """Decode ConverseStream event-stream bytes into OpenAI chat.completion.chunk objects.

    Tool calls are numbered 0, 1, ... in the order their blocks start. The finish
    chunk follows messageStop and the usage-only chunk follows metadata, which
    Bedrock sends after messageStop.
    """

    def __init__(self, provider: str, response_tool: str | None) -> None:
        super().__init__()
        self.provider = provider
        self.response_tool = response_tool
        self.buffer = EventStreamBuffer()
        self.id = f"chatcmpl-bedrock-{time.time_ns()}"
        self.created = int(time.time())
        self.blocks: dict[int, _Block] = {}
        self.tool_count = 0
        self.response_tool_called = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self.buffer.add_data(data)
        chunks: list[dict[str, Any]] = []
        try:
            for message in self.buffer:
                chunks.extend(self._handle(message.headers, message.payload))
        except ParserError as exc:
            raise ProviderProtocolError(
                f"Provider {self.provider} sent a malformed event-stream frame: "
                f"{type(exc).__name__}."
            ) from None
        return chunks

    def _handle(self, headers: dict[str, Any], payload: bytes) -> list[dict[str, Any]]:
        message_type = headers.get(":message-type")
        if message_type == "exception":
            raise _stream_exception(self.provider, headers, payload)
        if message_type == "error":
            raise ProviderStatusError(
                f"Provider {self.provider} reported an error mid-stream: "
                f"{headers.get(':error-message') or headers.get(':error-code')}",
                upstream_status=500,
                error_type="api_error",
            )
        event = _load(payload, self.provider)
        kind = headers.get(":event-type")
        if kind == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "contentBlockStart":
            return self._block_start(event.get("contentBlockIndex"), event.get("start"))
        if kind == "contentBlockDelta":
            return self._block_delta(event.get("contentBlockIndex"), event.get("delta"))
        if kind == "contentBlockStop":
            return self._block_stop(event.get("contentBlockIndex"))
        if kind == "messageStop":
            return self._message_stop(event.get("stopReason"))
        if kind == "metadata":
            self.usage = usage_from_converse(event.get("usage"))
            return [self._usage_chunk()]
        logger.debug("skipping ConverseStream event %s", kind)
        return []

    def _block_start(self, index: Any, start: Any) -> list[dict[str, Any]]:
        tool_use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool_use, dict):
            return []
        name = str(tool_use.get("name") or "")
        if self.response_tool and name == self.response_tool:
            self.blocks[index] = _Block("response")
            self.response_tool_called = True
            return []
        block = _Block("tool", self.tool_count)
        self.blocks[index] = block
        self.tool_count += 1
        call = {
            "index": block.tool_index,
            "id": str(tool_use.get("toolUseId") or ""),
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, index: Any, delta: Any) -> list[dict[str, Any]]:
        if not isinstance(delta, dict):
            return []
        block = self.blocks.get(index)
        if isinstance(delta.get("text"), str) and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        if isinstance(delta.get("toolUse"), dict) and block is not None:
            fragment = delta["toolUse"].get("input")
            if not isinstance(fragment, str) or not fragment:
                return []
            if block.kind == "response":
                return [self._chunk({"content": fragment})]
            arguments = {"index": block.tool_index, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [arguments]})]
        if isinstance(delta.get("reasoningContent"), dict):
            return self._reasoning_delta(index, delta["reasoningContent"])
        return []

    def _reasoning_delta(self, index: Any, content: dict[str, Any]) -> list[dict]:
        block = self.blocks.setdefault(index, _Block("reasoning"))
        if isinstance(content.get("text"), str) and content["text"]:
            block.reasoning.append(content["text"])
            return [self._chunk({"reasoning_content": content["text"]})]
        if isinstance(content.get("signature"), str):
            block.signature += content["signature"]
            return []
        if isinstance(content.get("redactedContent"), str):
            redacted = {"type": "redacted_thinking", "data": content["redactedContent"]}
            return [self._chunk({"thinking_blocks": [redacted]})]
        return []

    def _block_stop(self, index: Any) -> list[dict[str, Any]]:
        block = self.blocks.get(index)
        if block is None or block.kind != "reasoning" or not block.reasoning:
            return []
        thinking = {
            "type": "thinking",
            "thinking": "".join(block.reasoning),
            "signature": block.signature,
        }
        return [self._chunk({"thinking_blocks": [thinking]})]

    def _message_stop(self, stop_reason: Any) -> list[dict[str, Any]]:
        self.finished = True
        finish_reason = finish_reason_for(
            stop_reason,
            has_tool_calls=self.tool_count > 0,
            only_response_tool=self.tool_count == 0 and self.response_tool_called,
            truncated=False,
        )
        return [self._chunk({}, finish_reason)]

    def _usage_chunk(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": "",
            "choices": [],
            "usage": openai_usage(self.usage),
        }

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


def _load(payload: bytes, provider: str) -> dict[str, Any]:
    try:
        event = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        raise ProviderProtocolError(
            f"Provider {provider} streamed an event that is not JSON."
        ) from None
    if not isinstance(event, dict):
        raise ProviderProtocolError(
            f"Provider {provider} streamed an event that is not an object."
        )
    return event


def _stream_exception(
    provider: str, headers: dict[str, Any], payload: bytes
) -> ProviderStatusError:
    exception_type = str(headers.get(":exception-type") or "")
    status, error_type = STREAM_EXCEPTIONS.get(exception_type, (500, "api_error"))
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return ProviderStatusError(
        f"Provider {provider} reported {exception_type or 'an exception'} "
        f"mid-stream: {message or 'no error message'}",
        upstream_status=status,
        error_type=error_type,
    )
