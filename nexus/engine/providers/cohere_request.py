"""Translation of canonical (OpenAI chat) requests into Cohere v2 chat bodies.

Messages, tools, tool calls and tool results keep OpenAI's shape on the wire. Cohere's
tool_choice has only REQUIRED and NONE, so a named choice sends only that tool with
REQUIRED; response_format json_schema becomes `{type: json_object, json_schema}`; and
reasoning_effort becomes `thinking`.
"""

import logging
from typing import Any

from nexus.engine.canonical import ChatRequest, text_of
from nexus.engine.errors import InvalidRequestError

logger = logging.getLogger(__name__)


def build_chat_body(request: ChatRequest, upstream_model: str) -> dict[str, Any]:
    """Return the Cohere v2 chat body for a canonical request."""
    source = request.body
    if source.get("n") not in (None, 1):
        raise InvalidRequestError("'n' must be 1 for Cohere models.", param="n")
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": [
            _cohere_message(message, index)
            for index, message in enumerate(request.messages)
        ],
    }
    for name in ("max_completion_tokens", "max_tokens"):
        if source.get(name) is not None:
            body["max_tokens"] = source[name]
            break
    renames = {
        "temperature": "temperature",
        "top_p": "p",
        "seed": "seed",
        "frequency_penalty": "frequency_penalty",
        "presence_penalty": "presence_penalty",
    }
    for name, target in renames.items():
        if source.get(name) is not None:
            body[target] = source[name]
    stop = source.get("stop")
    if stop is not None:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    _apply_tools(body, request)
    _apply_response_format(body, source.get("response_format"))
    _apply_reasoning(body, source.get("reasoning_effort"))
    if request.stream:
        body["stream"] = True
    return body


def _cohere_message(message: dict[str, Any], index: int) -> dict[str, Any]:
    role = message["role"]
    param = f"messages[{index}]"
    if role in ("system", "developer"):
        return {"role": "system", "content": text_of(message.get("content"))}
    if role == "user":
        return {"role": "user", "content": _user_content(message.get("content"), param)}
    if role == "tool":
        tool_call_id = message.get("tool_call_id")
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise InvalidRequestError(
                f"'{param}.tool_call_id' must be a non-empty string.",
                param=f"{param}.tool_call_id",
            )
        content = text_of(message.get("content"))
        return {"role": "tool", "tool_call_id": tool_call_id, "content": content}
    if role == "assistant":
        converted: dict[str, Any] = {"role": "assistant"}
        text = text_of(message.get("content"))
        if text:
            converted["content"] = text
        if message.get("tool_calls"):
            converted["tool_calls"] = message["tool_calls"]
            if isinstance(message.get("reasoning_content"), str):
                converted["tool_plan"] = message["reasoning_content"]
        return converted
    raise InvalidRequestError(
        f"'{param}.role' function is not supported for Cohere models; use tools and "
        "role tool.",
        param=f"{param}.role",
    )


def _user_content(content: Any, param: str) -> Any:
    if not isinstance(content, list):
        return content
    parts = []
    for index, part in enumerate(content):
        if part["type"] == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif part["type"] == "image_url":
            # Cohere's vision models take http(s) and data URLs as OpenAI does.
            parts.append({"type": "image_url", "image_url": part.get("image_url")})
        else:
            raise InvalidRequestError(
                f"'{param}.content[{index}].type' {part['type']!r} is not supported "
                "for Cohere models.",
                param=f"{param}.content[{index}]",
            )
    return parts


def _apply_tools(body: dict[str, Any], request: ChatRequest) -> None:
    tools = request.tools
    if not tools:
        return
    if any(tool.get("type", "function") != "function" for tool in tools):
        raise InvalidRequestError(
            "Only tools of type function are supported for Cohere models.",
            param="tools",
        )
    choice = request.body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        tools = [tool for tool in tools if tool["function"]["name"] == name]
        if not tools:
            raise InvalidRequestError(
                f"'tool_choice' names {name!r}, which is not in 'tools'.",
                param="tool_choice",
            )
        # Cohere cannot name a tool, so only the named tool is offered and required.
        body["tool_choice"] = "REQUIRED"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    elif choice not in (None, "auto"):
        raise InvalidRequestError(
            "'tool_choice' must be auto, none, required or "
            "{type: function, function: {name}}.",
            param="tool_choice",
        )
    body["tools"] = [_cohere_tool(tool["function"]) for tool in tools]


def _cohere_tool(function: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "name": function["name"],
        "parameters": function.get("parameters")
        or {"type": "object", "properties": {}},
    }
    if isinstance(function.get("description"), str):
        converted["description"] = function["description"]
    return {"type": "function", "function": converted}


def _apply_response_format(body: dict[str, Any], response_format: Any) -> None:
    if not isinstance(response_format, dict):
        return
    kind = response_format.get("type")
    if kind in (None, "text"):
        return
    if kind == "json_object":
        body["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise InvalidRequestError(
            "'response_format.type' must be text, json_object or json_schema, "
            f"got {kind!r}.",
            param="response_format.type",
        )
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    converted: dict[str, Any] = {"type": "json_object"}
    if isinstance(schema, dict):
        converted["json_schema"] = schema
    body["response_format"] = converted


def _apply_reasoning(body: dict[str, Any], effort: Any) -> None:
    if effort is None:
        return
    if effort == "none":
        body["thinking"] = {"type": "disabled"}
        return
    if not isinstance(effort, str):
        raise InvalidRequestError(
            "'reasoning_effort' must be a string.", param="reasoning_effort"
        )
    # NOTE: Cohere has no effort levels; any effort enables thinking with the
    # model's own budget.
    body["thinking"] = {"type": "enabled"}
