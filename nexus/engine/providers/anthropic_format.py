"""Mapping tables and content conversions between OpenAI chat and Anthropic Messages.

Both directions use this module: the provider codec (OpenAI shape to Anthropic and
back) and the `/v1/messages` ingress (Anthropic shape to OpenAI and back), so every
table exists once.

Canonical carriers for Anthropic features that OpenAI chat has no field for:

- An assistant message carries `reasoning_content` (the thinking text, joined) and
  `thinking_blocks` (the Anthropic `thinking` blocks with their `signature`, and
  `redacted_thinking` blocks with their `data`). Only `thinking_blocks` go back to
  Anthropic, because a thinking block without its signature is rejected there.
- A tool message carries `is_error: true` when the tool reported a failure.
- A choice carries `stop_reason`, the stop sequence that ended the output, as
  vLLM does in its OpenAI-compatible API.
- A usage object carries `prompt_tokens_details.cache_write_tokens`, the input tokens
  written to the prompt cache (Anthropic's `cache_creation_input_tokens`).
"""

import logging
import re
from typing import Any

from nexus.engine.canonical import Usage
from nexus.engine.errors import InvalidRequestError

logger = logging.getLogger(__name__)

# Anthropic stop_reason to OpenAI finish_reason. pause_turn means a server tool
# paused a long turn, and the content so far is complete, so it maps to stop.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# OpenAI finish_reason to Anthropic stop_reason, for responses sent on /v1/messages.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Anthropic error types by HTTP status, from Anthropic's HTTP errors page; 402
# billing_error also appears among the Anthropic SDK's error types.
ERROR_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

# HTTP status for an Anthropic error type, used for errors inside a stream.
STATUS_BY_ERROR_TYPE = {value: key for key, value in ERROR_TYPES_BY_STATUS.items()}

# ChatRequest.extensions key for Anthropic request fields that OpenAI chat cannot
# express: "thinking" (the caller's exact thinking object), "effort"
# (output_config.effort) and "top_k". The Anthropic codec applies them.
EXTENSION_KEY = "anthropic"

IMAGE_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
DOCUMENT_MEDIA_TYPES = {"application/pdf"}

# reasoning_effort to a thinking budget in tokens (budget mode). Anthropic needs at
# least 1024 and less than max_tokens. Only low, medium and high are produced in the
# other direction, because most OpenAI reasoning models accept them, while minimal
# and xhigh are model-specific.
EFFORT_BUDGETS = {
    "minimal": 1024,
    "low": 4096,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}
REVERSIBLE_EFFORTS = ("low", "medium", "high")
MIN_THINKING_BUDGET = 1024

# reasoning_effort to Anthropic's output_config.effort (adaptive mode).
ADAPTIVE_EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
}

DATA_URL = re.compile(
    r"^data:(?P<media>[^;,]+)(?P<params>(?:;[^;,]*)*?);base64,(?P<data>.*)$", re.DOTALL
)
TOOL_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")

_unknown_stop_reasons: set[str] = set()


def token_count(value: Any) -> int:
    """Return value if it is a positive integer token count, else 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def merge_usage_fields(raw: dict[str, Any], usage: Any) -> None:
    """Copy the non-zero token counts of an Anthropic usage object into raw.

    Streams report usage in message_start and again, cumulatively, in message_delta.
    """
    if not isinstance(usage, dict):
        return
    for name, value in usage.items():
        if token_count(value) or (
            isinstance(value, dict) and name == "output_tokens_details"
        ):
            raw[name] = value


def finish_reason_for(
    stop_reason: Any, *, truncated: bool, has_tool_calls: bool
) -> str:
    """Map an Anthropic stop_reason to an OpenAI finish_reason.

    An unknown value is logged once per value. It becomes tool_calls when the
    message contains tool calls, length when the output reached max_tokens, and stop
    otherwise.
    """
    if stop_reason in FINISH_REASONS:
        return FINISH_REASONS[stop_reason]
    if isinstance(stop_reason, str) and stop_reason not in _unknown_stop_reasons:
        _unknown_stop_reasons.add(stop_reason)
        logger.warning(
            "unknown Anthropic stop_reason %s",
            stop_reason,
            extra={"provider": "anthropic"},
        )
    if has_tool_calls:
        return "tool_calls"
    return "length" if truncated else "stop"


def stop_reason_for(finish_reason: Any, stop_sequence: Any) -> str:
    """Map an OpenAI finish_reason to an Anthropic stop_reason."""
    if finish_reason == "stop" and isinstance(stop_sequence, str):
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason, "end_turn")


def error_type_for(status: int, error_type: str = "") -> str:
    """Return the Anthropic error type for an HTTP status and an engine error type.

    The status decides where Anthropic documents one (413 is request_too_large even
    though the engine types it invalid_request_error). Other statuses keep a known
    Anthropic type, else fall back to invalid_request_error for 4xx and api_error.
    """
    if status in ERROR_TYPES_BY_STATUS:
        return ERROR_TYPES_BY_STATUS[status]
    if error_type in STATUS_BY_ERROR_TYPE:
        return error_type
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def usage_from_anthropic(usage: Any) -> Usage:
    """Read an Anthropic usage object; canonical input includes cache reads and writes."""
    if not isinstance(usage, dict):
        return Usage()
    cache_read = token_count(usage.get("cache_read_input_tokens"))
    cache_write = token_count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    thinking = (
        token_count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    )
    return Usage(
        input_tokens=token_count(usage.get("input_tokens")) + cache_read + cache_write,
        output_tokens=token_count(usage.get("output_tokens")),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=thinking,
        reported=True,
    )


def anthropic_usage(usage: Usage) -> dict[str, Any]:
    """Return the Anthropic usage object; its input_tokens excludes cache reads and writes."""
    plain_input = max(
        usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens, 0
    )
    return {
        "input_tokens": plain_input,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }


def openai_usage(usage: Usage) -> dict[str, Any]:
    """Return the OpenAI usage object plus cache_write_tokens in prompt_tokens_details."""
    body = usage.to_openai()
    if usage.cache_write_tokens:
        body["prompt_tokens_details"]["cache_write_tokens"] = usage.cache_write_tokens
    return body


def usage_from_openai(usage: Any) -> Usage:
    """Read an OpenAI usage object, including cache_write_tokens when present."""
    result = Usage.from_openai(usage)
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    if isinstance(details, dict):
        result.cache_write_tokens = token_count(details.get("cache_write_tokens"))
    return result


def thinking_budget_for(effort: str) -> int:
    """Return the thinking budget for a reasoning_effort, or raise a 400."""
    if effort not in EFFORT_BUDGETS:
        raise InvalidRequestError(
            f"'reasoning_effort' must be one of none, {', '.join(EFFORT_BUDGETS)}, got {effort!r}.",
            param="reasoning_effort",
        )
    return EFFORT_BUDGETS[effort]


def effort_for_budget(budget: int) -> str:
    """Return the reasoning_effort whose budget is the largest not above budget."""
    chosen = REVERSIBLE_EFFORTS[0]
    for effort in REVERSIBLE_EFFORTS:
        if EFFORT_BUDGETS[effort] <= budget:
            chosen = effort
    return chosen


def anthropic_tool_id(tool_id: Any) -> str:
    """Return a tool id Anthropic accepts; it allows only letters, digits, _ and -."""
    text = str(tool_id or "")
    return TOOL_ID_INVALID.sub("_", text) or "toolu_missing"


def image_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    """Convert an OpenAI image_url part to an Anthropic image block; detail is dropped."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"'{param}.image_url.url' must be a non-empty string.", param=param
        )
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _parse_data_url(url, param)
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            f"'{param}' has media type {media_type}; supported image types are "
            f"{', '.join(sorted(IMAGE_MEDIA_TYPES))}.",
            param=param,
        )
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    """Convert an Anthropic image block to an OpenAI image_url part."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequestError(
            f"'{param}.source' must be an object.", param=f"{param}.source"
        )
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    if source.get("type") == "base64":
        media_type = source.get("media_type")
        data = source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise InvalidRequestError(
                f"'{param}.source' needs string media_type and data.",
                param=f"{param}.source",
            )
        return {
            "type": "image_url",
            "image_url": {"url": f"data:{media_type};base64,{data}"},
        }
    raise InvalidRequestError(
        f"'{param}.source.type' must be base64 or url, got {source.get('type')!r}.",
        param=f"{param}.source.type",
    )


def document_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    """Convert an OpenAI file part holding base64 file_data to an Anthropic document block."""
    file = part.get("file")
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise InvalidRequestError(
            f"'{param}.file.file_data' must be a base64 data URL; file ids are not supported for Anthropic models.",
            param=param,
        )
    media_type, data = _parse_data_url(data_url, param)
    if media_type not in DOCUMENT_MEDIA_TYPES:
        raise InvalidRequestError(
            f"'{param}' has media type {media_type}; Anthropic models accept application/pdf files.",
            param=param,
        )
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def file_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    """Convert an Anthropic base64 PDF document block to an OpenAI file part."""
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise InvalidRequestError(
            f"'{param}.source' must be a base64 PDF; other document sources are not supported.",
            param=f"{param}.source",
        )
    media_type = source.get("media_type")
    data = source.get("data")
    if media_type not in DOCUMENT_MEDIA_TYPES or not isinstance(data, str):
        raise InvalidRequestError(
            f"'{param}.source' must hold application/pdf base64 data.",
            param=f"{param}.source",
        )
    file: dict[str, Any] = {"file_data": f"data:{media_type};base64,{data}"}
    if isinstance(block.get("title"), str):
        file["filename"] = block["title"]
    return {"type": "file", "file": file}


def _parse_data_url(url: str, param: str) -> tuple[str, str]:
    match = DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(
            f"'{param}' must be an http(s) URL or a data URL of the form data:<media type>;base64,<data>.",
            param=param,
        )
    return match.group("media").strip().lower(), match.group("data")


def anthropic_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Convert an OpenAI function tool to an Anthropic custom tool."""
    function = tool["function"]
    converted: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters")
        or {"type": "object", "properties": {}},
    }
    if isinstance(function.get("description"), str):
        converted["description"] = function["description"]
    return converted


def openai_tool(tool: Any, param: str) -> dict[str, Any]:
    """Convert an Anthropic custom tool to an OpenAI function tool, or raise a 400."""
    if not isinstance(tool, dict):
        raise InvalidRequestError(f"'{param}' must be an object.", param=param)
    if tool.get("type") not in (None, "custom"):
        raise InvalidRequestError(
            f"'{param}.type' {tool.get('type')!r} is a server tool, which is only served by Anthropic models.",
            param=f"{param}.type",
        )
    name = tool.get("name")
    schema = tool.get("input_schema")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f"'{param}.name' must be a non-empty string.", param=f"{param}.name"
        )
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"'{param}.input_schema' must be an object.", param=f"{param}.input_schema"
        )
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def anthropic_tool_choice(choice: Any, *, parallel: bool) -> dict[str, Any] | None:
    """Convert an OpenAI tool_choice (and parallel_tool_calls) to Anthropic's."""
    if choice is None or choice == "auto":
        converted: dict[str, Any] = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(
        (choice.get("function") or {}).get("name"), str
    ):
        converted = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequestError(
            "'tool_choice' must be auto, none, required or {type: function, function: {name}}.",
            param="tool_choice",
        )
    if not parallel:
        converted["disable_parallel_tool_use"] = True
    return converted


def openai_tool_choice(choice: Any) -> tuple[Any, bool]:
    """Convert an Anthropic tool_choice to OpenAI's tool_choice and parallel_tool_calls."""
    if not isinstance(choice, dict):
        raise InvalidRequestError(
            "'tool_choice' must be an object.", param="tool_choice"
        )
    kind = choice.get("type")
    parallel = choice.get("disable_parallel_tool_use") is not True
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", True
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise InvalidRequestError(
        "'tool_choice.type' must be auto, any, tool (with a name) or none.",
        param="tool_choice.type",
    )
