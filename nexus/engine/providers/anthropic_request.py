"""Translation of canonical (OpenAI chat) requests into Anthropic Messages bodies.

response_format (json_object or json_schema) is emulated with a forced tool named
RESPONSE_FORMAT_TOOL whose input schema is the caller's schema. The response codec
returns that tool's input as the message content.
"""

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.anthropic_format import (
    ADAPTIVE_EFFORTS,
    EXTENSION_KEY,
    MIN_THINKING_BUDGET,
    anthropic_tool,
    anthropic_tool_choice,
    anthropic_tool_id,
    document_block,
    image_block,
    thinking_budget_for,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 4096

# The synthetic tool that emulates response_format: the model is made to call it, and
# its input comes back to the caller as the message content.
RESPONSE_FORMAT_TOOL = "json_response"

THINKING_MODES = ("budget", "adaptive")


@dataclass(frozen=True)
class AnthropicOptions:
    """Options of an Anthropic connection.

    default_max_tokens is the max_tokens sent when the caller set neither max_tokens
    nor max_completion_tokens, because Anthropic requires the field.

    thinking_mode decides how reasoning_effort is sent. "budget" sends
    `thinking: {type: enabled, budget_tokens}` from anthropic_format.EFFORT_BUDGETS,
    which Claude 4.5 and older models need. "adaptive" sends
    `thinking: {type: adaptive}` with `output_config.effort`, which Claude 4.7 and
    newer models need.
    """

    default_max_tokens: int = DEFAULT_MAX_TOKENS
    thinking_mode: str = "budget"

    def __post_init__(self) -> None:
        limit = self.default_max_tokens
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(
                f"default_max_tokens must be a positive integer, got {limit!r}"
            )
        if self.thinking_mode not in THINKING_MODES:
            raise ValueError(
                f"thinking_mode must be budget or adaptive, got {self.thinking_mode!r}"
            )


def build_messages_body(
    request: ChatRequest, upstream_model: str, options: AnthropicOptions
) -> dict[str, Any]:
    """Return the Anthropic Messages body for a canonical request."""
    source = request.body
    system, messages = convert_messages(request.messages)
    if not messages:
        raise InvalidRequestError(
            "At least one user or assistant message is required.", param="messages"
        )
    if source.get("n") not in (None, 1):
        raise InvalidRequestError("'n' must be 1 for Anthropic models.", param="n")

    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": max_tokens_for(request, options.default_max_tokens),
    }
    if system:
        body["system"] = system
    body["messages"] = messages
    _apply_sampling(body, source)
    extension = request.extensions.get(EXTENSION_KEY) or {}
    _apply_extension(body, extension)
    thinking = _apply_thinking(body, request, extension, options)
    _apply_tools(body, request, thinking)
    if request.stream:
        body["stream"] = True
    return body


def max_tokens_for(request: ChatRequest, default: int = DEFAULT_MAX_TOKENS) -> int:
    """Return the caller's max_completion_tokens or max_tokens, else default."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise InvalidRequestError(
                    f"'{name}' must be at least 1, got {value}.", param=name
                )
            return value
    return default


def _caller_set_max_tokens(request: ChatRequest) -> bool:
    return any(
        request.body.get(name) is not None
        for name in ("max_completion_tokens", "max_tokens")
    )


def _apply_sampling(body: dict[str, Any], source: dict[str, Any]) -> None:
    temperature = source.get("temperature")
    if temperature is not None:
        # OpenAI accepts 0 to 2 and Anthropic 0 to 1; values above 1 are sent as 1.
        body["temperature"] = min(float(temperature), 1.0)
    if source.get("top_p") is not None:
        body["top_p"] = source["top_p"]

    stop = source.get("stop")
    if isinstance(stop, str):
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        if stop:
            body["stop_sequences"] = stop
    elif stop is not None:
        raise InvalidRequestError(
            "'stop' must be a string or an array of strings.", param="stop"
        )

    user = source.get("user") or source.get("safety_identifier")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}


def _apply_extension(body: dict[str, Any], extension: dict[str, Any]) -> None:
    """Copy top_k and output_config.effort that the `/v1/messages` ingress kept."""
    if isinstance(extension.get("top_k"), int):
        body["top_k"] = extension["top_k"]
    if isinstance(extension.get("effort"), str):
        body.setdefault("output_config", {})["effort"] = extension["effort"]


def _apply_thinking(
    body: dict[str, Any],
    request: ChatRequest,
    extension: dict[str, Any],
    options: AnthropicOptions,
) -> bool:
    """Set thinking from the caller's exact Anthropic object or from reasoning_effort.

    Returns whether thinking is on, because Anthropic then rejects forced tool use.
    """
    exact = extension.get("thinking")
    if isinstance(exact, dict):
        body["thinking"] = exact
        return exact.get("type") in ("enabled", "adaptive")

    effort = request.body.get("reasoning_effort")
    if effort is None or effort == "none":
        return False
    if not isinstance(effort, str):
        raise InvalidRequestError(
            "'reasoning_effort' must be a string.", param="reasoning_effort"
        )
    if options.thinking_mode == "adaptive":
        if effort not in ADAPTIVE_EFFORTS:
            raise InvalidRequestError(
                f"'reasoning_effort' must be one of none, {', '.join(ADAPTIVE_EFFORTS)}, got {effort!r}.",
                param="reasoning_effort",
            )
        body["thinking"] = {"type": "adaptive"}
        body.setdefault("output_config", {})["effort"] = ADAPTIVE_EFFORTS[effort]
        return True

    budget = thinking_budget_for(effort)
    if not _caller_set_max_tokens(request):
        # The default output allowance stays available next to the thinking budget.
        body["max_tokens"] += budget
    else:
        # Anthropic needs budget_tokens below max_tokens, which bounds thinking and text.
        budget = min(budget, body["max_tokens"] - 1)
    if budget < MIN_THINKING_BUDGET:
        logger.debug(
            "thinking not enabled, max_tokens %s leaves no budget", body["max_tokens"]
        )
        return False
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True


def _apply_tools(body: dict[str, Any], request: ChatRequest, thinking: bool) -> None:
    source = request.body
    tools = [
        anthropic_tool(tool)
        for tool in request.tools
        if tool.get("type", "function") == "function"
    ]
    if len(tools) != len(request.tools):
        raise InvalidRequestError(
            "Only tools of type function are supported for Anthropic models.",
            param="tools",
        )
    parallel = source.get("parallel_tool_calls") is not False
    choice = source.get("tool_choice")
    response_schema = _response_format_schema(source)

    if response_schema is not None:
        if any(tool["name"] == RESPONSE_FORMAT_TOOL for tool in tools):
            raise InvalidRequestError(
                f"A tool named {RESPONSE_FORMAT_TOOL} cannot be combined with response_format.",
                param="tools",
            )
        tools.append(response_schema)
        choice = _response_format_choice(
            choice, has_client_tools=bool(request.tools), thinking=thinking
        )
        if thinking:
            # NOTE: Anthropic rejects forced tool use while thinking, so the tool is
            # requested in the system prompt instead.
            body.setdefault("system", []).append(
                {
                    "type": "text",
                    "text": f"Give your final answer by calling the {RESPONSE_FORMAT_TOOL} tool.",
                }
            )

    if not tools:
        return
    body["tools"] = tools
    converted = anthropic_tool_choice(choice, parallel=parallel)
    if converted is not None and converted != {"type": "auto"}:
        body["tool_choice"] = converted


def _response_format_schema(source: dict[str, Any]) -> dict[str, Any] | None:
    response_format = source.get("response_format")
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None

    tool: dict[str, Any] = {
        "name": RESPONSE_FORMAT_TOOL,
        "description": "Return the final answer as this tool's input.",
        "input_schema": {"type": "object"},
    }
    if kind == "json_object":
        return tool
    if kind != "json_schema":
        raise InvalidRequestError(
            f"'response_format.type' must be text, json_object or json_schema, got {kind!r}.",
            param="response_format.type",
        )

    wrapper = response_format.get("json_schema")
    if not isinstance(wrapper, dict):
        raise InvalidRequestError(
            "'response_format.json_schema' must be an object.",
            param="response_format.json_schema",
        )
    schema = wrapper.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequestError(
            "'response_format.json_schema.schema' must be an object.",
            param="response_format.json_schema.schema",
        )

    if schema:
        tool["input_schema"] = schema
    if isinstance(wrapper.get("description"), str):
        tool["description"] = wrapper["description"]
    return tool


def _response_format_choice(
    choice: Any, *, has_client_tools: bool, thinking: bool
) -> Any:
    if thinking:
        return "auto"
    if not has_client_tools or choice == "none":
        return {"type": "function", "function": {"name": RESPONSE_FORMAT_TOOL}}
    if isinstance(choice, dict):
        return choice
    # Any tool is forced: a caller's tool, or the response tool carrying the content.
    return "required"


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
    """Return Anthropic system blocks and alternating turns for OpenAI messages.

    System and developer messages anywhere in the list join `system` in order. Tool
    results become tool_result blocks of a user turn, and consecutive turns of the
    same role are merged, since Anthropic requires alternating roles.
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(
                _content_blocks(message.get("content"), param, allowed=("text",))
            )
            continue
        if role == "user":
            turn_role, blocks = (
                "user",
                _content_blocks(
                    message.get("content"), param, allowed=("text", "image_url", "file")
                ),
            )
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message, param)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result_block(message, param)]
        else:
            raise InvalidRequestError(
                f"'{param}.role' function is not supported for Anthropic models; use tools and role tool.",
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
            # Anthropic wants tool results first in a user turn.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, turns


def _content_blocks(
    content: Any, param: str, *, allowed: tuple[str, ...]
) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for index, part in enumerate(content):
        part_param = f"{param}.content[{index}]"
        kind = part["type"]
        if kind not in allowed:
            raise InvalidRequestError(
                f"'{part_param}.type' {kind!r} is not supported here for Anthropic models.",
                param=part_param,
            )
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise InvalidRequestError(
                    f"'{part_param}.{kind}' must be a string.", param=part_param
                )
            if text:
                block: dict[str, Any] = {"type": "text", "text": text}
                if isinstance(part.get("cache_control"), dict):
                    block["cache_control"] = part["cache_control"]
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(image_block(part, part_param))
        else:
            blocks.append(document_block(part, part_param))
    return blocks


def _assistant_blocks(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        raise InvalidRequestError(
            f"'{param}.function_call' is not supported for Anthropic models; use tool_calls.",
            param=f"{param}.function_call",
        )
    blocks = _thinking_blocks(message.get("thinking_blocks"), param)
    blocks.extend(
        _content_blocks(message.get("content"), param, allowed=("text", "refusal"))
    )
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise InvalidRequestError(
            f"'{param}.tool_calls' must be an array.", param=f"{param}.tool_calls"
        )
    for index, call in enumerate(tool_calls):
        blocks.append(_tool_use_block(call, f"{param}.tool_calls[{index}]"))
    return blocks


def _thinking_blocks(value: Any, param: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequestError(
            f"'{param}.thinking_blocks' must be an array.",
            param=f"{param}.thinking_blocks",
        )
    blocks = []
    for block in value:
        if not isinstance(block, dict):
            raise InvalidRequestError(
                f"'{param}.thinking_blocks' must hold objects.",
                param=f"{param}.thinking_blocks",
            )
        if block.get("type") == "redacted_thinking" and isinstance(
            block.get("data"), str
        ):
            blocks.append({"type": "redacted_thinking", "data": block["data"]})
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            # A thinking block without its signature (from another provider) cannot be
            # verified by Anthropic, which would reject the request.
            if isinstance(block.get("signature"), str) and block["signature"]:
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": block["thinking"],
                        "signature": block["signature"],
                    }
                )
        else:
            raise InvalidRequestError(
                f"'{param}.thinking_blocks' entries must be thinking or redacted_thinking blocks.",
                param=f"{param}.thinking_blocks",
            )
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
    arguments = function.get("arguments")
    arguments_param = f"{param}.function.arguments"
    if arguments in (None, ""):
        tool_input: Any = {}
    elif isinstance(arguments, str):
        try:
            tool_input = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise InvalidRequestError(
                f"'{arguments_param}' is not valid JSON.", param=arguments_param
            ) from None
    else:
        raise InvalidRequestError(
            f"'{arguments_param}' must be a JSON string.", param=arguments_param
        )
    if not isinstance(tool_input, dict):
        raise InvalidRequestError(
            f"'{arguments_param}' must encode a JSON object.", param=arguments_param
        )
    return {
        "type": "tool_use",
        "id": anthropic_tool_id(call["id"]),
        "name": function["name"],
        "input": tool_input,
    }


def _tool_result_block(message: dict[str, Any], param: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise InvalidRequestError(
            f"'{param}.tool_call_id' must be a non-empty string.",
            param=f"{param}.tool_call_id",
        )
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": anthropic_tool_id(tool_call_id),
    }
    content = message.get("content")
    if isinstance(content, list):
        block["content"] = _content_blocks(
            content, param, allowed=("text", "image_url")
        )
    elif isinstance(content, str) and content:
        block["content"] = content
    if message.get("is_error") is True:
        block["is_error"] = True
    return block
