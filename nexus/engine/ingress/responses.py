"""OpenAI Responses API (`POST /v1/responses`) as the caller's wire format.

Requests are decoded into the canonical chat request so that every provider can
serve them. `instructions` becomes a system message, and `input` (a string or a list
of items) becomes messages. Message items keep their text, image and file parts,
function_call items become assistant tool_calls, and function_call_output items
become tool messages. Function tools are unflattened into chat tools. `text.format`
becomes response_format, `reasoning.effort` reasoning_effort and max_output_tokens
max_completion_tokens. Reasoning items in the input are left out of the translation.

Features that only OpenAI's own Responses API has (built-in tools, file and image
ids, item references, allowed_tools) are recorded in the request's
ResponsesContext.native_only; such a request can only be passed through unchanged to
an OpenAI upstream. The gateway expands `previous_response_id` itself, from its
response store, before decoding.
"""

import logging
from typing import Any

from nexus.engine.canonical import ChatRequest, ChatResult, validate_chat_body
from nexus.engine.errors import InvalidRequestError, NexusError
from nexus.engine.ingress.base import Ingress, StreamEncoder
from nexus.engine.ingress.openai import openai_error_body
from nexus.engine.ingress.responses_encode import (
    EXTENSION_KEY,
    ResponsesContext,
    ResponsesStreamEncoder,
    encode_result,
)

logger = logging.getLogger(__name__)

# Request fields copied into the canonical chat body unchanged.
COPIED_FIELDS = ("temperature", "top_p", "parallel_tool_calls", "user", "stream")
# Request fields the gateway cannot serve on any upstream, with the reason.
REJECTED_FIELDS = {
    "conversation": "conversations are not supported; send previous_response_id "
    "or the whole input instead",
    "prompt": "stored prompt templates are not supported; send instructions instead",
}
TEXT_PARTS = ("input_text", "output_text", "text")


class ResponsesIngress(Ingress):
    format = "responses"

    def decode_chat(
        self, body: Any, history: list[dict[str, Any]] | None = None
    ) -> ChatRequest:
        """Decode a Responses API body into a canonical chat request.

        history contains the input and output items of the response that
        previous_response_id names, which come before this request's input.
        """
        canonical, context = decode_responses_body(body, history or [])
        request = validate_chat_body(canonical)
        request.extensions[EXTENSION_KEY] = context
        return request

    def encode_chat(self, result: ChatResult, request: ChatRequest) -> dict[str, Any]:
        """Encode a canonical chat completion as a Response object."""
        return encode_result(result, request)

    def chat_stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        return ResponsesStreamEncoder(request)

    def error_body(self, error: NexusError) -> dict[str, Any]:
        return openai_error_body(error)


def decode_responses_body(
    body: Any, history: list[dict[str, Any]]
) -> tuple[dict[str, Any], ResponsesContext]:
    """Return the canonical chat body and the Responses context of a request body."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    for name, reason in REJECTED_FIELDS.items():
        if body.get(name) is not None:
            raise InvalidRequestError(
                f"'{name}' is not supported: {reason}.", param=name
            )
    if body.get("background") is True:
        raise InvalidRequestError(
            "'background' responses are not supported; send the request without it.",
            param="background",
        )
    store = body.get("store", True)
    if not isinstance(store, bool):
        raise InvalidRequestError("'store' must be a boolean.", param="store")

    new_items = input_items(body.get("input"))
    context = ResponsesContext(
        body=body, input_items=[*history, *new_items], store=store
    )
    canonical: dict[str, Any] = {
        "model": body.get("model"),
        "messages": instructions_messages(body.get("instructions"))
        + convert_items(context.input_items, context),
    }
    for name in COPIED_FIELDS:
        if name in body:
            canonical[name] = body[name]
    _copy_limits(body, canonical)
    _convert_tools(body, canonical, context)
    _convert_text_format(body.get("text"), canonical)
    return canonical, context


def input_items(value: Any) -> list[dict[str, Any]]:
    """Return the request's input as a list of items; a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if isinstance(value, list) and value:
        return value
    raise InvalidRequestError(
        "'input' is required and must be a string or a non-empty array of items.",
        param="input",
    )


def instructions_messages(value: Any) -> list[dict[str, Any]]:
    """Return the system message for `instructions`, or none."""
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise InvalidRequestError(
            "'instructions' must be a string.", param="instructions"
        )
    return [{"role": "system", "content": value}]


def convert_items(items: list[Any], context: ResponsesContext) -> list[dict[str, Any]]:
    """Return the chat messages for Responses input items."""
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequestError(f"'{param}' must be an object.", param=param)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, param, context))
        elif kind == "function_call":
            _append_tool_call(messages, item, param)
        elif kind == "function_call_output":
            messages.append(_tool_result(item, param, context))
        elif kind == "reasoning":
            # NOTE: reasoning from earlier turns is not sent to translated upstreams,
            # since providers reject or ignore reasoning text without their signature.
            continue
        elif kind == "item_reference":
            context.native_only.append(f"{param} (item_reference)")
        else:
            raise InvalidRequestError(
                f"'{param}.type' {kind!r} is not supported; use message, "
                "function_call, function_call_output or reasoning.",
                param=f"{param}.type",
            )
    return messages


def _message(
    item: dict[str, Any], param: str, context: ResponsesContext
) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequestError(
            f"'{param}.role' must be user, assistant, system or developer, got {role!r}.",
            param=f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"'{param}.content' must be a string or an array of parts.",
            param=f"{param}.content",
        )
    parts = [
        part
        for position, raw in enumerate(content)
        if (part := _part(raw, f"{param}.content[{position}]", context)) is not None
    ]
    if role != "user":
        # Assistant, system and developer messages carry text only in chat format.
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": role, "content": parts[0]["text"]}
    return {"role": role, "content": parts}


def _part(part: Any, param: str, context: ResponsesContext) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        raise InvalidRequestError(f"'{param}' must be an object.", param=param)
    kind = part.get("type")
    if kind in TEXT_PARTS:
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            context.native_only.append(f"{param} (image file_id)")
            return None
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str):
            context.native_only.append(f"{param} (file_id or file_url)")
            return None
        file: dict[str, Any] = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidRequestError(
        f"'{param}.type' {kind!r} is not supported; use input_text, input_image or "
        "input_file.",
        param=f"{param}.type",
    )


def _append_tool_call(
    messages: list[dict[str, Any]], item: dict[str, Any], param: str
) -> None:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequestError(
            f"'{param}' needs string call_id and name.", param=param
        )
    arguments = item.get("arguments")
    call = {
        "id": call_id,
        "type": "function",
        "function": {
            "name": name,
            "arguments": arguments if isinstance(arguments, str) else "{}",
        },
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        # A message item and the function calls after it are one assistant turn.
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_result(
    item: dict[str, Any], param: str, context: ResponsesContext
) -> dict[str, Any]:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise InvalidRequestError(
            f"'{param}.call_id' must be a string.", param=f"{param}.call_id"
        )
    output = item.get("output")
    if isinstance(output, str):
        content: Any = output
    elif isinstance(output, list):
        content = [
            part
            for position, raw in enumerate(output)
            if (part := _part(raw, f"{param}.output[{position}]", context)) is not None
        ]
    else:
        raise InvalidRequestError(
            f"'{param}.output' must be a string or an array of parts.",
            param=f"{param}.output",
        )
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _copy_limits(body: dict[str, Any], canonical: dict[str, Any]) -> None:
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidRequestError(
                "'max_output_tokens' must be a positive integer.",
                param="max_output_tokens",
            )
        canonical["max_completion_tokens"] = limit
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise InvalidRequestError("'reasoning' must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise InvalidRequestError(
                "'reasoning.effort' must be a string.", param="reasoning.effort"
            )
        canonical["reasoning_effort"] = effort


def _convert_tools(
    body: dict[str, Any], canonical: dict[str, Any], context: ResponsesContext
) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be an array.", param="tools")
    functions = []
    for index, tool in enumerate(tools or []):
        param = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"'{param}' must be an object.", param=param)
        if tool.get("type") != "function":
            context.native_only.append(f"{param} ({tool.get('type')} tool)")
            continue
        if not isinstance(tool.get("name"), str):
            raise InvalidRequestError(
                f"'{param}.name' must be a string.", param=f"{param}.name"
            )
        function = {
            name: tool[name]
            for name in ("name", "description", "parameters", "strict")
            if tool.get(name) is not None
        }
        functions.append({"type": "function", "function": function})
    if functions:
        canonical["tools"] = functions
    choice = body.get("tool_choice")
    if choice in (None, "auto", "none", "required"):
        if choice is not None:
            canonical["tool_choice"] = choice
        return
    if isinstance(choice, dict) and choice.get("type") == "function":
        if not isinstance(choice.get("name"), str):
            raise InvalidRequestError(
                "'tool_choice.name' must be a string.", param="tool_choice.name"
            )
        canonical["tool_choice"] = {
            "type": "function",
            "function": {"name": choice["name"]},
        }
        return
    if isinstance(choice, dict):
        context.native_only.append(f"tool_choice ({choice.get('type')})")
        return
    raise InvalidRequestError(
        "'tool_choice' must be auto, none, required or an object.", param="tool_choice"
    )


def _convert_text_format(text: Any, canonical: dict[str, Any]) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise InvalidRequestError("'text' must be an object.", param="text")
    text_format = text.get("format")
    if text_format is None:
        return
    kind = text_format.get("type") if isinstance(text_format, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        canonical["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise InvalidRequestError(
            "'text.format.type' must be text, json_object or json_schema.",
            param="text.format.type",
        )
    if not isinstance(text_format.get("name"), str) or not isinstance(
        text_format.get("schema"), dict
    ):
        raise InvalidRequestError(
            "'text.format' of type json_schema needs a string name and a schema object.",
            param="text.format",
        )
    schema = {
        name: text_format[name]
        for name in ("name", "schema", "strict", "description")
        if text_format.get(name) is not None
    }
    canonical["response_format"] = {"type": "json_schema", "json_schema": schema}
