"""Anthropic Messages (`/v1/messages`) as the caller's wire format.

Requests are decoded into the canonical OpenAI-shaped body. Fields OpenAI chat cannot
express (the exact thinking object, output_config.effort, top_k) travel in
ChatRequest.extensions for the Anthropic codec. Prompt-cache markers
(cache_control) are not carried, so they reach Anthropic only on the native
passthrough path. Answers and streams are encoded back into Anthropic messages and
events; the carriers used for thinking, tool errors and stop sequences are listed
in nexus.engine.providers.anthropic_format.
"""

import logging
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, validate_chat_body
from nexus.engine.errors import InvalidRequestError, NexusError
from nexus.engine.ingress.anthropic_encode import (
    AnthropicStreamEncoder,
    anthropic_error_body,
    content_blocks,
    message_id,
)
from nexus.engine.ingress.base import Ingress, StreamEncoder
from nexus.engine.providers.anthropic_format import (
    EXTENSION_KEY,
    anthropic_usage,
    effort_for_budget,
    file_part,
    image_part,
    openai_tool,
    openai_tool_choice,
    stop_reason_for,
)

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
        """Encode a canonical chat completion as an Anthropic message."""
        choices = result.body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        if not isinstance(choice, dict):
            choice = {}
        message = choice.get("message")
        if not isinstance(message, dict):
            message = {}
        stop_sequence = choice.get("stop_reason")
        if not isinstance(stop_sequence, str):
            stop_sequence = None
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

    def decode_count_tokens(self, body: Any) -> ChatRequest:
        """Decode a `/v1/messages/count_tokens` body into a canonical chat request."""
        return validate_chat_body(decode_count_tokens_body(body))

    def model_object(self, name: str) -> dict[str, Any]:
        """Return Anthropic's model object for a public model name."""
        # The gateway keeps no creation date of models, so every model shows the epoch.
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": "1970-01-01T00:00:00Z",
        }

    def model_list(self, names: list[str]) -> dict[str, Any]:
        """Return Anthropic's model list, on one page."""
        return {
            "data": [self.model_object(name) for name in names],
            "has_more": False,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }


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

    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": max_tokens,
        "messages": prompt_messages(body),
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


def decode_count_tokens_body(body: Any) -> dict[str, Any]:
    """Return the canonical OpenAI chat body of a count_tokens request.

    The body is a Messages body without the generation fields: model, messages,
    system, tools, tool_choice, thinking and output_config are read, and
    max_tokens, stream and sampling fields are ignored.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "messages": prompt_messages(body),
    }
    _decode_tools(body, canonical)
    _decode_thinking(body, canonical)
    return canonical


def prompt_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the OpenAI messages for a body's system prompt and messages."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty array.", param="messages"
        )
    return system_messages(body.get("system")) + convert_messages(messages)


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
    if body.get("output_format") is not None:
        # The name structured outputs had while in beta; the same object.
        if output_config.get("format") is not None:
            raise InvalidRequestError(
                "Send 'output_config.format' or 'output_format', not both.",
                param="output_format",
            )
        _decode_output_format(body["output_format"], canonical, "output_format")
    else:
        _decode_output_format(
            output_config.get("format"), canonical, "output_config.format"
        )

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


def _decode_output_format(
    output_format: Any, canonical: dict[str, Any], name: str
) -> None:
    if output_format is None:
        return
    if (
        not isinstance(output_format, dict)
        or output_format.get("type") != "json_schema"
    ):
        raise InvalidRequestError(f"'{name}.type' must be json_schema.", param=name)
    schema = output_format.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"'{name}.schema' must be an object.", param=f"{name}.schema"
        )
    canonical["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
