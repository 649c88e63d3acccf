"""Conversion of OpenAI chat messages into Bedrock Converse turns.

Converse carries tool calls as `toolUse` blocks of an assistant turn and their
results as `toolResult` blocks of the next user turn. Bedrock rejects a user turn
that answers one toolUse id twice, and one that leaves an id of the previous
assistant turn unanswered, so consecutive tool messages are gathered into one user
turn and a repeated identical result for one id is sent once.
"""

import base64
import binascii
import logging
from typing import Any

import orjson

from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.anthropic_format import DATA_URL

logger = logging.getLogger(__name__)

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
        # Converse rejects empty content and blank text, so an empty output is
        # sent as an empty JSON object.
        "content": blocks or [{"json": {}}],
    }
    if message.get("is_error") is True:
        result["status"] = "error"
    return {"toolResult": result}
