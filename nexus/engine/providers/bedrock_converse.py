"""Translation between canonical (OpenAI chat) requests and Bedrock Converse bodies.

Converse carries tool calls as `toolUse` blocks of an assistant turn and their
results as `toolResult` blocks of the next user turn. Bedrock rejects a user turn
that answers one toolUse id twice, and one that leaves an id of the previous
assistant turn unanswered, so consecutive tool messages are gathered into one user
turn and a repeated identical result for one id is sent once.

response_format is emulated like on Anthropic: a tool named RESPONSE_FORMAT_TOOL with
the caller's schema is forced, and its input comes back as the message content.
"""

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, Usage
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.anthropic_format import DATA_URL, thinking_budget_for
from nexus.engine.providers.base import finish_reason_from

logger = logging.getLogger(__name__)

RESPONSE_FORMAT_TOOL = "json_response"

# Converse stopReason to OpenAI finish_reason.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/plain": "txt",
    "text/html": "html",
    "text/markdown": "md",
}

# The max_tokens sent with a thinking budget when the caller set no limit.
DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class BedrockOptions:
    """Options of a Bedrock connection.

    guardrail_identifier and guardrail_version attach a Bedrock guardrail to every
    Converse call. embedding_concurrency bounds the parallel InvokeModel calls of one
    Titan embeddings request, which takes one input per call. cohere_input_type is
    the input_type sent to Cohere embedding models on Bedrock.
    """

    guardrail_identifier: str = ""
    guardrail_version: str = ""
    embedding_concurrency: int = 8
    cohere_input_type: str = "search_document"

    def __post_init__(self) -> None:
        limit = self.embedding_concurrency
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(
                f"embedding_concurrency must be a positive integer, got {limit!r}"
            )
        if bool(self.guardrail_identifier) != bool(self.guardrail_version):
            raise ValueError(
                "guardrail_identifier and guardrail_version must be set together"
            )


def build_converse_body(
    request: ChatRequest, upstream_model: str, options: BedrockOptions
) -> dict[str, Any]:
    """Return the Converse (or ConverseStream) body for a canonical request."""
    source = request.body
    if source.get("n") not in (None, 1):
        raise InvalidRequestError("'n' must be 1 for Bedrock models.", param="n")
    system, messages = convert_messages(request.messages)
    if not messages:
        raise InvalidRequestError(
            "At least one user or assistant message is required.", param="messages"
        )

    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference_config(source)
    thinking = _apply_reasoning(body, inference, request, upstream_model)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(request, messages, thinking)
    if tool_config:
        body["toolConfig"] = tool_config
    if thinking and response_format_tool(request):
        # Claude rejects forced tool use while thinking, so the prompt asks for it.
        body.setdefault("system", []).append(
            {"text": f"Give your final answer by calling the {RESPONSE_FORMAT_TOOL} tool."}
        )
    if options.guardrail_identifier:
        body["guardrailConfig"] = {
            "guardrailIdentifier": options.guardrail_identifier,
            "guardrailVersion": options.guardrail_version,
        }
    return body


def max_tokens_of(request: ChatRequest) -> int | None:
    """Return the caller's max_completion_tokens or max_tokens, if set."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise InvalidRequestError(
                    f"'{name}' must be at least 1, got {value}.", param=name
                )
            return value
    return None


def _inference_config(source: dict[str, Any]) -> dict[str, Any]:
    inference: dict[str, Any] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = source.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise InvalidRequestError(
                    f"'{name}' must be at least 1, got {value}.", param=name
                )
            inference["maxTokens"] = value
            break
    if source.get("temperature") is not None:
        # OpenAI accepts 0 to 2 and Converse 0 to 1; values above 1 are sent as 1.
        inference["temperature"] = min(float(source["temperature"]), 1.0)
    if source.get("top_p") is not None:
        inference["topP"] = source["top_p"]
    stop = source.get("stop")
    if isinstance(stop, str):
        inference["stopSequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        if stop:
            inference["stopSequences"] = stop
    elif stop is not None:
        raise InvalidRequestError(
            "'stop' must be a string or an array of strings.", param="stop"
        )
    return inference


def _apply_reasoning(
    body: dict[str, Any],
    inference: dict[str, Any],
    request: ChatRequest,
    upstream_model: str,
) -> bool:
    """Send reasoning_effort in the model family's own field; return whether Claude thinks.

    Anthropic models take `thinking` with a token budget (the Anthropic codec's
    table), Amazon Nova models take `reasoningConfig`. Other families get no field.
    """
    effort = request.body.get("reasoning_effort")
    if effort is None or effort == "none":
        return False
    if not isinstance(effort, str):
        raise InvalidRequestError(
            "'reasoning_effort' must be a string.", param="reasoning_effort"
        )
    if "anthropic." in upstream_model:
        budget = thinking_budget_for(effort)
        if "maxTokens" not in inference:
            inference["maxTokens"] = DEFAULT_MAX_TOKENS + budget
        budget = min(budget, inference["maxTokens"] - 1)
        if budget < 1024:
            return False
        body["additionalModelRequestFields"] = {
            "thinking": {"type": "enabled", "budget_tokens": budget}
        }
        return True
    if "amazon.nova" in upstream_model:
        level = {"minimal": "low", "xhigh": "high"}.get(effort, effort)
        body["additionalModelRequestFields"] = {
            "reasoningConfig": {"type": "enabled", "maxReasoningEffort": level}
        }
        return False
    # NOTE: other model families reason by default or not at all on Converse.
    logger.debug("reasoning_effort not sent for model %s", upstream_model)
    return False


def _tool_config(
    request: ChatRequest, messages: list[dict[str, Any]], thinking: bool
) -> dict[str, Any] | None:
    source = request.body
    tools = [_tool_spec(tool) for tool in request.tools]
    choice = source.get("tool_choice")
    schema = _response_format_schema(source)
    history_has_tools = any(
        "toolUse" in block or "toolResult" in block
        for message in messages
        for block in message["content"]
    )

    if choice == "none" and schema is None and not history_has_tools:
        # Converse has no "none" choice, so the tools are left out.
        return None
    if schema is not None:
        if any(tool["toolSpec"]["name"] == RESPONSE_FORMAT_TOOL for tool in tools):
            raise InvalidRequestError(
                f"A tool named {RESPONSE_FORMAT_TOOL} cannot be combined with "
                "response_format.",
                param="tools",
            )
        tools.append({"toolSpec": schema})
        if not request.tools or choice == "none":
            choice = {"type": "function", "function": {"name": RESPONSE_FORMAT_TOOL}}
        elif not isinstance(choice, dict):
            choice = "required"
    if not tools:
        return None

    config: dict[str, Any] = {"tools": tools}
    converted = _tool_choice(choice)
    if converted is not None and not thinking:
        # Claude rejects forced tool use while thinking, so the choice stays auto.
        config["toolChoice"] = converted
    return config


def _tool_spec(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise InvalidRequestError(
            "Only tools of type function are supported for Bedrock models.",
            param="tools",
        )
    function = tool["function"]
    spec: dict[str, Any] = {
        "name": function["name"],
        "inputSchema": {
            "json": function.get("parameters") or {"type": "object", "properties": {}}
        },
    }
    if isinstance(function.get("description"), str) and function["description"]:
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice in ("auto", "none"):
        # NOTE: "none" with tool blocks in the history keeps the tools, because
        # Converse requires toolConfig then; the model may still call one.
        return None
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and isinstance(
        (choice.get("function") or {}).get("name"), str
    ):
        return {"tool": {"name": choice["function"]["name"]}}
    raise InvalidRequestError(
        "'tool_choice' must be auto, none, required or "
        "{type: function, function: {name}}.",
        param="tool_choice",
    )


def _response_format_schema(source: dict[str, Any]) -> dict[str, Any] | None:
    response_format = source.get("response_format")
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    spec: dict[str, Any] = {
        "name": RESPONSE_FORMAT_TOOL,
        "description": "Return the final answer as this tool's input.",
        "inputSchema": {"json": {"type": "object"}},
    }
    if kind == "json_object":
        return spec
    if kind != "json_schema":
        raise InvalidRequestError(
            "'response_format.type' must be text, json_object or json_schema, "
            f"got {kind!r}.",
            param="response_format.type",
        )
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    if not isinstance(wrapper, dict) or (
        schema is not None and not isinstance(schema, dict)
    ):
        raise InvalidRequestError(
            "'response_format.json_schema' must be an object with an object "
            "'schema'.",
            param="response_format.json_schema",
        )
    if schema:
        spec["inputSchema"] = {"json": schema}
    return spec


def response_format_tool(request: ChatRequest) -> str | None:
    """Return the synthetic tool name when the request emulates response_format."""
    response_format = request.body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        return RESPONSE_FORMAT_TOOL
    return None


def convert_messages(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return Converse system blocks and alternating turns for OpenAI messages.

    System and developer messages anywhere join `system` in order. Tool results
    become toolResult blocks of a user turn, and consecutive turns of one role are
    merged, because Converse requires alternating roles.
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), param))
            continue
        if role == "user":
            turn_role, blocks = "user", _user_blocks(message.get("content"), param)
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message, param)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result_block(message, param)]
        else:
            raise InvalidRequestError(
                f"'{param}.role' function is not supported for Bedrock models; "
                "use tools and role tool.",
                param=f"{param}.role",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})

    for turn in turns:
        if turn["role"] == "user":
            turn["content"] = _dedupe_tool_results(turn["content"])
    return system, turns


def _dedupe_tool_results(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put tool results first and send each toolUse id once.

    A repeated result with the same content is dropped; a repeated id with other
    content is rejected, since the gateway cannot tell which result is meant.
    """
    results: dict[str, dict[str, Any]] = {}
    ordered: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for block in blocks:
        result = block.get("toolResult")
        if result is None:
            others.append(block)
            continue
        tool_use_id = result["toolUseId"]
        earlier = results.get(tool_use_id)
        if earlier is None:
            results[tool_use_id] = result
            ordered.append(block)
        elif earlier != result:
            raise InvalidRequestError(
                f"Two tool messages answer tool_call_id {tool_use_id} with "
                "different content; Bedrock accepts one result per tool call.",
                param="messages",
            )
    return ordered + others


def _text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = []
    for index, part in enumerate(content):
        if part["type"] not in ("text", "refusal"):
            raise InvalidRequestError(
                f"'{param}.content[{index}].type' {part['type']!r} is not supported "
                "here for Bedrock models.",
                param=f"{param}.content[{index}]",
            )
        text = part.get(part["type"])
        if not isinstance(text, str):
            raise InvalidRequestError(
                f"'{param}.content[{index}].{part['type']}' must be a string.",
                param=f"{param}.content[{index}]",
            )
        if text:
            blocks.append({"text": text})
    return blocks


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_blocks(content, param)
    blocks = []
    for index, part in enumerate(content):
        part_param = f"{param}.content[{index}]"
        kind = part["type"]
        if kind == "image_url":
            blocks.append(image_block(part, part_param))
        elif kind == "file":
            blocks.append(_document_block(part, part_param, index))
        else:
            blocks.extend(_text_blocks([part], param))
    return blocks


def image_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    """Convert an OpenAI image_url part holding a data URL to a Converse image block.

    Converse takes image bytes only. An http(s) URL is rejected rather than fetched,
    so the gateway never downloads from addresses a caller chose.
    """
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"'{param}.image_url.url' must be a non-empty string.", param=param
        )
    if url.startswith(("http://", "https://")):
        raise InvalidRequestError(
            f"'{param}.image_url.url' is an http(s) URL, which Bedrock does not "
            "accept; send the image as a data URL (data:image/png;base64,...).",
            param=param,
        )
    media_type, data = _decode_data_url(url, param)
    image_format = IMAGE_FORMATS.get(media_type)
    if image_format is None:
        raise InvalidRequestError(
            f"'{param}' has media type {media_type}; Bedrock accepts "
            f"{', '.join(sorted(set(IMAGE_FORMATS) - {'image/jpg'}))}.",
            param=param,
        )
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _document_block(part: dict[str, Any], param: str, index: int) -> dict[str, Any]:
    file = part.get("file")
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise InvalidRequestError(
            f"'{param}.file.file_data' must be a base64 data URL; file ids are not "
            "supported for Bedrock models.",
            param=param,
        )
    media_type, data = _decode_data_url(data_url, param)
    document_format = DOCUMENT_FORMATS.get(media_type)
    if document_format is None:
        raise InvalidRequestError(
            f"'{param}' has media type {media_type}; Bedrock accepts "
            f"{', '.join(sorted(DOCUMENT_FORMATS))} files.",
            param=param,
        )
    # Converse document names allow letters, digits, spaces, hyphens and brackets.
    name = file.get("filename") if isinstance(file.get("filename"), str) else ""
    cleaned = "".join(c for c in name if c.isalnum() or c in " -()[]").strip()
    return {
        "document": {
            "format": document_format,
            "name": cleaned or f"document {index + 1}",
            "source": {"bytes": data},
        }
    }


def _decode_data_url(url: str, param: str) -> tuple[str, str]:
    """Return the media type and the base64 data of a data URL, checking the data."""
    match = DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(
            f"'{param}' must be a data URL of the form "
            "data:<media type>;base64,<data>.",
            param=param,
        )
    data = match.group("data")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            f"'{param}' holds data that is not valid base64.", param=param
        ) from None
    return match.group("media").strip().lower(), data


def _assistant_blocks(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        raise InvalidRequestError(
            f"'{param}.function_call' is not supported for Bedrock models; "
            "use tool_calls.",
            param=f"{param}.function_call",
        )
    blocks = _reasoning_blocks(message.get("thinking_blocks"), param)
    blocks.extend(_text_blocks(message.get("content"), param))
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise InvalidRequestError(
            f"'{param}.tool_calls' must be an array.", param=f"{param}.tool_calls"
        )
    for index, call in enumerate(tool_calls):
        blocks.append(_tool_use_block(call, f"{param}.tool_calls[{index}]"))
    return blocks


def _reasoning_blocks(thinking_blocks: Any, param: str) -> list[dict[str, Any]]:
    """Return reasoningContent blocks for the canonical thinking_blocks carrier."""
    if not isinstance(thinking_blocks, list):
        return []
    blocks = []
    for block in thinking_blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and block.get("signature"):
            text = {"text": str(block.get("thinking") or "")}
            text["signature"] = str(block["signature"])
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif block.get("type") == "redacted_thinking" and block.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": block["data"]}})
    return blocks


def _tool_use_block(call: Any, param: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(
            f"'{param}.function.name' must be a string.", param=f"{param}.function.name"
        )
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise InvalidRequestError(
            f"'{param}.id' must be a non-empty string.", param=f"{param}.id"
        )
    return {
        "toolUse": {
            "toolUseId": call["id"],
            "name": function["name"],
            "input": tool_arguments(function.get("arguments"), param),
        }
    }


def tool_arguments(arguments: Any, param: str) -> dict[str, Any]:
    """Parse an OpenAI tool call's arguments string into the object Converse needs."""
    arguments_param = f"{param}.function.arguments"
    if arguments in (None, ""):
        return {}
    if not isinstance(arguments, str):
        raise InvalidRequestError(
            f"'{arguments_param}' must be a JSON string.", param=arguments_param
        )
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            f"'{arguments_param}' is not valid JSON.", param=arguments_param
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError(
            f"'{arguments_param}' must encode a JSON object.", param=arguments_param
        )
    return parsed


def _tool_result_block(message: dict[str, Any], param: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise InvalidRequestError(
            f"'{param}.tool_call_id' must be a non-empty string.",
            param=f"{param}.tool_call_id",
        )
    content = message.get("content")
    if isinstance(content, list):
        blocks = _user_blocks(content, param)
    else:
        blocks = _text_blocks(content, param)
    result: dict[str, Any] = {
        "toolUseId": tool_call_id,
        # Converse rejects an empty result, so an empty output is sent as one space.
        "content": blocks or [{"text": " "}],
    }
    if message.get("is_error") is True:
        result["status"] = "error"
    return {"toolResult": result}


def usage_from_converse(usage: Any) -> Usage:
    """Read a Converse usage object; canonical input includes cache reads and writes."""
    if not isinstance(usage, dict):
        return Usage()
    cache_read = _count(usage.get("cacheReadInputTokens"))
    cache_write = _count(usage.get("cacheWriteInputTokens"))
    return Usage(
        input_tokens=_count(usage.get("inputTokens")) + cache_read + cache_write,
        output_tokens=_count(usage.get("outputTokens")),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        reported=True,
    )


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def message_from_content(
    blocks: list[Any], response_tool: str | None
) -> dict[str, Any]:
    """Return the OpenAI assistant message for Converse content blocks.

    The input of the response_format tool becomes text content. Reasoning text goes
    to reasoning_content and, with its signature, to thinking_blocks.
    """
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            tool_use = block["toolUse"]
            arguments = orjson.dumps(tool_use.get("input") or {}).decode()
            if response_tool and tool_use.get("name") == response_tool:
                texts.append(arguments)
                continue
            tool_calls.append(
                {
                    "id": str(tool_use.get("toolUseId") or ""),
                    "type": "function",
                    "function": {
                        "name": str(tool_use.get("name") or ""),
                        "arguments": arguments,
                    },
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            _add_reasoning(block["reasoningContent"], reasoning, thinking_blocks)

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


def _add_reasoning(
    content: dict[str, Any], reasoning: list[str], thinking_blocks: list
) -> None:
    text = content.get("reasoningText")
    if isinstance(text, dict):
        reasoning.append(str(text.get("text") or ""))
        thinking_blocks.append(
            {
                "type": "thinking",
                "thinking": str(text.get("text") or ""),
                "signature": str(text.get("signature") or ""),
            }
        )
    elif isinstance(content.get("redactedContent"), str):
        thinking_blocks.append(
            {"type": "redacted_thinking", "data": content["redactedContent"]}
        )


def finish_reason_for(
    stop_reason: Any, *, has_tool_calls: bool, only_response_tool: bool, truncated: bool
) -> str:
    """Map a Converse stopReason to an OpenAI finish_reason (see FINISH_REASONS)."""
    if stop_reason == "tool_use" and only_response_tool:
        # Only the response_format tool was called, so the answer is complete.
        return "stop"
    return finish_reason_from(
        FINISH_REASONS,
        stop_reason,
        provider="bedrock",
        has_tool_calls=has_tool_calls,
        truncated=truncated,
    )
