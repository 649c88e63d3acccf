"""Anthropic Messages (`/v1/messages`) as the caller's wire format.

Requests are decoded into the canonical OpenAI-shaped body; fields OpenAI chat cannot
express (the exact thinking object, output_config.effort, top_k) travel in
ChatRequest.extensions for the Anthropic codec. Prompt-cache markers
(cache_control) are not carried, so they reach Anthropic only on the native
passthrough path. Answers and streams are encoded back into Anthropic messages and
events; the carriers used for thinking, tool errors and stop sequences are listed
in nexus.engine.providers.anthropic_format.
"""

import logging
import uuid
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, Usage, validate_chat_body
from nexus.engine.errors import InvalidRequestError, NexusError
from nexus.engine.ingress.base import Ingress, StreamEncoder
from nexus.engine.providers.anthropic_format import (
    EXTENSION_KEY,
    anthropic_usage,
    effort_for_budget,
    error_type_for,
    file_part,
    image_part,
    openai_tool,
    openai_tool_choice,
    stop_reason_for,
    usage_from_openai,
)
from nexus.engine.sse import encode_event

logger = logging.getLogger(__name__)

# Anthropic output_config.effort to OpenAI reasoning_effort; OpenAI models top out
# at high, and xhigh is accepted only by some of them.
OPENAI_EFFORTS = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}


class AnthropicIngress(Ingress):
    format = "anthropic"

    def decode_chat(self, body: Any) -> ChatRequest:
        """Decode an Anthropic Messages body into a canonical chat request."""
        canonical, extension = decode_messages_body(body)
        request = validate_chat_body(canonical)
        if extension:
            request.extensions[EXTENSION_KEY] = extension
        return request

    def encode_chat(self, result: ChatResult, request: ChatRequest) -> dict[str, Any]:
        """Encode a canonical answer as an Anthropic message."""
        choices = result.body.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = (
            choice.get("message") if isinstance(choice.get("message"), dict) else {}
        )
        stop_sequence = (
            choice.get("stop_reason")
            if isinstance(choice.get("stop_reason"), str)
            else None
        )
        stop_reason = stop_reason_for(choice.get("finish_reason"), stop_sequence)
        return {
            "id": message_id(result.body.get("id")),
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content_blocks(message),
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence if stop_reason == "stop_sequence" else None,
            "usage": anthropic_usage(result.usage),
        }

    def chat_stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        return AnthropicStreamEncoder(request)

    def error_body(self, error: NexusError) -> dict[str, Any]:
        return anthropic_error_body(error)


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


def decode_messages_body(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the canonical OpenAI chat body and the Anthropic-only extension fields."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequestError("'max_tokens' is required.", param="max_tokens")
    if (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or max_tokens < 1
    ):
        raise InvalidRequestError(
            "'max_tokens' must be a positive integer.", param="max_tokens"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty array.", param="messages"
        )

    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": max_tokens,
        "messages": system_messages(body.get("system")) + convert_messages(messages),
    }
    for name in ("temperature", "top_p", "stream"):
        if name in body:
            canonical[name] = body[name]
    if body.get("stream") is True:
        # Anthropic streams always end with usage, so the upstream is asked for it.
        canonical["stream_options"] = {"include_usage": True}
    _decode_stop_and_metadata(body, canonical)
    _decode_tools(body, canonical)
    extension = _decode_thinking(body, canonical)
    if body.get("top_k") is not None:
        if not isinstance(body["top_k"], int) or isinstance(body["top_k"], bool):
            raise InvalidRequestError("'top_k' must be an integer.", param="top_k")
        extension["top_k"] = body["top_k"]
    return canonical, extension


def system_messages(system: Any) -> list[dict[str, Any]]:
    """Return the system messages for Anthropic's system string or text blocks."""
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise InvalidRequestError(
            "'system' must be a string or an array of text blocks.", param="system"
        )
    parts = []
    for index, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise InvalidRequestError(
                f"'system[{index}]' must be a text block.", param=f"system[{index}]"
            )
        parts.append({"type": "text", "text": block["text"]})
    return [{"role": "system", "content": parts}] if parts else []


def convert_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Return OpenAI messages for Anthropic messages; tool results become tool messages."""
    converted: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"'{param}' must be an object.", param=param)
        role = message.get("role")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise InvalidRequestError(
                f"'{param}.content' must be a string or an array of content blocks.",
                param=f"{param}.content",
            )
        if role == "user":
            converted.extend(_user_messages(content, param))
        elif role == "assistant":
            converted.append(_assistant_message(content, param))
        else:
            raise InvalidRequestError(
                f"'{param}.role' must be user or assistant, got {role!r}.",
                param=f"{param}.role",
            )
    return converted


def _blocks(content: list[Any], param: str) -> list[tuple[str, dict[str, Any]]]:
    checked = []
    for index, block in enumerate(content):
        block_param = f"{param}.content[{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequestError(
                f"'{block_param}' must be an object with a 'type'.", param=block_param
            )
        checked.append((block_param, block))
    return checked


def _user_messages(content: str | list[Any], param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block_param, block in _blocks(content, param):
        if block["type"] == "tool_result":
            if parts:
                messages.append({"role": "user", "content": parts})
                parts = []
            messages.append(_tool_message(block, block_param))
        else:
            parts.append(_user_part(block, block_param))
    if parts:
        messages.append({"role": "user", "content": parts})
    return messages


def _user_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise InvalidRequestError(
                f"'{param}.text' must be a string.", param=f"{param}.text"
            )
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return image_part(block, param)
    if kind == "document":
        return file_part(block, param)
    raise InvalidRequestError(
        f"'{param}.type' {kind!r} is not supported; use text, image, document or tool_result.",
        param=f"{param}.type",
    )


def _tool_message(block: dict[str, Any], param: str) -> dict[str, Any]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise InvalidRequestError(
            f"'{param}.tool_use_id' must be a non-empty string.",
            param=f"{param}.tool_use_id",
        )
    content = block.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):
        # NOTE: images stay in the tool message; Anthropic models get them back as
        # tool_result content, while OpenAI accepts only text there.
        content = [
            _user_part(item, item_param) for item_param, item in _blocks(content, param)
        ]
    elif not isinstance(content, str):
        raise InvalidRequestError(
            f"'{param}.content' must be a string or an array of blocks.",
            param=f"{param}.content",
        )
    message: dict[str, Any] = {
        "role": "tool",
        "tool_call_id": tool_use_id,
        "content": content,
    }
    if block.get("is_error") is True:
        message["is_error"] = True
    return message


def _assistant_message(content: str | list[Any], param: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking_blocks: list[dict[str, Any]] = []
    for block_param, block in _blocks(content, param):
        kind = block["type"]
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block, block_param))
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thinking_blocks.append(
                {
                    "type": "thinking",
                    "thinking": block["thinking"],
                    "signature": str(block.get("signature") or ""),
                }
            )
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            thinking_blocks.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise InvalidRequestError(
                f"'{param}' has a {kind!r} block that is invalid or not supported in assistant turns.",
                param=block_param,
            )

    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
        message["reasoning_content"] = "\n".join(
            block["thinking"]
            for block in thinking_blocks
            if block["type"] == "thinking"
        )
    return message


def _tool_call(block: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise InvalidRequestError(
            f"'{param}' must have string id and name.", param=param
        )
    tool_input = block.get("input", {})
    if not isinstance(tool_input, dict):
        raise InvalidRequestError(
            f"'{param}.input' must be an object.", param=f"{param}.input"
        )
    return {
        "id": block["id"],
        "type": "function",
        "function": {
            "name": block["name"],
            "arguments": orjson.dumps(tool_input).decode(),
        },
    }


def _decode_stop_and_metadata(body: dict[str, Any], canonical: dict[str, Any]) -> None:
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(
            isinstance(item, str) for item in stop
        ):
            raise InvalidRequestError(
                "'stop_sequences' must be an array of strings.", param="stop_sequences"
            )
        if stop:
            canonical["stop"] = stop
    metadata = body.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidRequestError("'metadata' must be an object.", param="metadata")
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise InvalidRequestError(
            "'metadata.user_id' must be a string.", param="metadata.user_id"
        )
    if user_id:
        canonical["user"] = user_id


def _decode_tools(body: dict[str, Any], canonical: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be an array.", param="tools")
    if not tools:
        return
    canonical["tools"] = [
        openai_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools)
    ]
    if body.get("tool_choice") is not None:
        choice, parallel = openai_tool_choice(body["tool_choice"])
        canonical["tool_choice"] = choice
        if not parallel:
            canonical["parallel_tool_calls"] = False


def _decode_thinking(body: dict[str, Any], canonical: dict[str, Any]) -> dict[str, Any]:
    """Set reasoning_effort and response_format; return the exact fields for Anthropic."""
    extension: dict[str, Any] = {}
    output_config = body.get("output_config")
    if output_config is not None and not isinstance(output_config, dict):
        raise InvalidRequestError(
            "'output_config' must be an object.", param="output_config"
        )
    output_config = output_config or {}
    effort = output_config.get("effort")
    if effort is not None:
        if effort not in OPENAI_EFFORTS:
            raise InvalidRequestError(
                f"'output_config.effort' must be one of {', '.join(OPENAI_EFFORTS)}.",
                param="output_config.effort",
            )
        extension["effort"] = effort
    _decode_output_format(output_config.get("format"), canonical)

    thinking = body.get("thinking")
    if thinking is None:
        return extension
    if not isinstance(thinking, dict):
        raise InvalidRequestError("'thinking' must be an object.", param="thinking")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise InvalidRequestError(
                "'thinking.budget_tokens' must be a positive integer.",
                param="thinking.budget_tokens",
            )
        canonical["reasoning_effort"] = effort_for_budget(budget)
    elif kind == "adaptive":
        # Anthropic's default effort is high.
        canonical["reasoning_effort"] = OPENAI_EFFORTS[effort or "high"]
    elif kind != "disabled":
        raise InvalidRequestError(
            "'thinking.type' must be enabled, adaptive or disabled.",
            param="thinking.type",
        )
    extension["thinking"] = thinking
    return extension


def _decode_output_format(output_format: Any, canonical: dict[str, Any]) -> None:
    if output_format is None:
        return
    if (
        not isinstance(output_format, dict)
        or output_format.get("type") != "json_schema"
    ):
        raise InvalidRequestError(
            "'output_config.format.type' must be json_schema.",
            param="output_config.format",
        )
    schema = output_format.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "'output_config.format.schema' must be an object.",
            param="output_config.format.schema",
        )
    canonical["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


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
        self.open_kind = ""
        return [
            _event(
                "content_block_stop",
                {"type": "content_block_stop", "index": self.open_index},
            )
        ]

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.open_index, "delta": delta},
        )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(data), name)
