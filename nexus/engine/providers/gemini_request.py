"""Translation of canonical (OpenAI chat) requests into Gemini generateContent bodies.

The Gemini API (Google AI Studio) and Gemini models on Vertex AI take the same body,
so both codecs build it here. The mapping:

- system and developer messages become `systemInstruction` parts, in order.
- user turns keep role user and assistant turns become role model; consecutive
  turns of one role are merged into one content.
- tool messages become functionResponse parts of a user turn, named after the
  function of the earlier tool call with the same id. A JSON object result is sent
  as the response itself. Any other result goes under "output", or under "error"
  when the message carries `is_error: true`.
- tools become `functionDeclarations` and tool_choice becomes
  `toolConfig.functionCallingConfig` (AUTO, NONE, or ANY with allowedFunctionNames).
  Gemini has no switch for parallel calls, so parallel_tool_calls is not sent.
- image parts become inlineData (data URLs) or fileData (http, https and gs URLs,
  with a mimeType guessed from the file extension).
- response_format json_object sets responseMimeType application/json; json_schema
  also sends the inner schema as responseSchema.
- reasoning_effort becomes thinkingConfig.thinkingBudget (EFFORT_BUDGETS) with
  includeThoughts, and "none" sends a budget of 0.
- logprobs, logit_bias, user and store have no Gemini counterpart and are not sent.

Gemini's `parameters` and `responseSchema` accept an OpenAPI 3.0 subset of JSON
Schema, and the API rejects a request whose schema uses any other keyword (for
example additionalProperties, $schema or const). gemini_schema (in the module of
that name) rewrites a JSON Schema into that subset. With the connection option full_json_schema, the schemas
go unchanged as parametersJsonSchema and responseJsonSchema, which newer models
accept.
"""

import logging
import mimetypes
import posixpath
from typing import Any
from urllib.parse import urlsplit

import orjson

from nexus.engine.canonical import ChatRequest, text_of
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.anthropic_format import DATA_URL, EXTENSION_KEY
from nexus.engine.providers.gemini_format import (
    EFFORT_BUDGETS,
    signature_from_tool_call_id,
    text_signature,
)
from nexus.engine.providers.gemini_schema import gemini_schema

logger = logging.getLogger(__name__)

# Image types by extension, for URLs whose type the system table does not know.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
# NOTE: an image URL without a known extension is declared as JPEG.
DEFAULT_IMAGE_TYPE = "image/jpeg"
FILE_URL_SCHEMES = ("http://", "https://", "gs://")


def build_generate_body(
    request: ChatRequest,
    *,
    full_json_schema: bool = False,
    safety_settings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the generateContent body for a canonical request."""
    system, contents = convert_messages(request.messages)
    if not contents:
        raise InvalidRequestError(
            "At least one user or assistant message is required.", param="messages"
        )

    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    _apply_tools(body, request.body, full_json_schema)
    config = generation_config(request, full_json_schema)
    if config:
        body["generationConfig"] = config
    if safety_settings:
        body["safetySettings"] = safety_settings
    return body


def generation_config(request: ChatRequest, full_json_schema: bool) -> dict[str, Any]:
    """Return generationConfig: sampling, limits, output format and thinking."""
    source = request.body
    config: dict[str, Any] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        if source.get(name) is not None:
            config["maxOutputTokens"] = source[name]
            break
    renames = {
        "temperature": "temperature",
        "top_p": "topP",
        "seed": "seed",
        "presence_penalty": "presencePenalty",
        "frequency_penalty": "frequencyPenalty",
    }
    for name, gemini_name in renames.items():
        if source.get(name) is not None:
            config[gemini_name] = source[name]
    if source.get("n") not in (None, 1):
        config["candidateCount"] = source["n"]
    stop = _stop_sequences(source.get("stop"))
    if stop:
        config["stopSequences"] = stop

    extension = request.extensions.get(EXTENSION_KEY) or {}
    if isinstance(extension.get("top_k"), int):
        config["topK"] = extension["top_k"]
    _apply_response_format(config, source.get("response_format"), full_json_schema)
    thinking = thinking_config(request)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def thinking_config(request: ChatRequest) -> dict[str, Any] | None:
    """Return thinkingConfig for reasoning_effort, or None to keep the model default.

    A budget the caller gave on /v1/messages (thinking.budget_tokens) is sent as is.
    """
    exact = (request.extensions.get(EXTENSION_KEY) or {}).get("thinking")
    if isinstance(exact, dict):
        if exact.get("type") == "disabled":
            return {"thinkingBudget": 0}
        if exact.get("type") == "enabled" and isinstance(
            exact.get("budget_tokens"), int
        ):
            return {"thinkingBudget": exact["budget_tokens"], "includeThoughts": True}

    effort = request.body.get("reasoning_effort")
    if effort is None:
        return None
    if effort == "none":
        return {"thinkingBudget": 0}
    if effort not in EFFORT_BUDGETS:
        raise InvalidRequestError(
            f"'reasoning_effort' must be one of none, {', '.join(EFFORT_BUDGETS)}, "
            f"got {effort!r}.",
            param="reasoning_effort",
        )
    return {"thinkingBudget": EFFORT_BUDGETS[effort], "includeThoughts": True}


def _stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return stop
    raise InvalidRequestError(
        "'stop' must be a string or an array of strings.", param="stop"
    )


def _apply_response_format(
    config: dict[str, Any], response_format: Any, full_json_schema: bool
) -> None:
    if not isinstance(response_format, dict):
        return
    kind = response_format.get("type")
    if kind in (None, "text"):
        return
    if kind not in ("json_object", "json_schema"):
        raise InvalidRequestError(
            "'response_format.type' must be text, json_object or json_schema, "
            f"got {kind!r}.",
            param="response_format.type",
        )
    config["responseMimeType"] = "application/json"
    if kind == "json_object":
        return

    wrapper = response_format.get("json_schema")
    if not isinstance(wrapper, dict):
        raise InvalidRequestError(
            "'response_format.json_schema' must be an object.",
            param="response_format.json_schema",
        )
    schema = wrapper.get("schema")
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "'response_format.json_schema.schema' must be an object.",
            param="response_format.json_schema.schema",
        )
    if full_json_schema:
        config["responseJsonSchema"] = schema
        return
    converted = gemini_schema(schema)
    # An object schema without properties is rejected, and JSON mode covers it.
    if converted and not (
        converted.get("type") == "object" and "properties" not in converted
    ):
        config["responseSchema"] = converted


def _apply_tools(
    body: dict[str, Any], source: dict[str, Any], full_json_schema: bool
) -> None:
    tools = source.get("tools") or []
    if not tools:
        return
    declarations = [
        _function_declaration(tool, index, full_json_schema)
        for index, tool in enumerate(tools)
    ]
    body["tools"] = [{"functionDeclarations": declarations}]
    calling = _function_calling_config(source.get("tool_choice"))
    if calling is not None:
        body["toolConfig"] = {"functionCallingConfig": calling}


def _function_declaration(
    tool: dict[str, Any], index: int, full_json_schema: bool
) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise InvalidRequestError(
            "Only tools of type function are supported for Gemini models.",
            param=f"tools[{index}].type",
        )
    function = tool["function"]
    declaration: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        return declaration
    if full_json_schema:
        declaration["parametersJsonSchema"] = parameters
        return declaration
    converted = gemini_schema(parameters)
    # Gemini rejects an object schema with no properties, so a function without
    # parameters is declared without the field.
    if converted and converted.get("properties"):
        declaration["parameters"] = converted
    return declaration


def _function_calling_config(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    name = (
        (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    )
    if isinstance(name, str) and name:
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise InvalidRequestError(
        "'tool_choice' must be auto, none, required or "
        "{type: function, function: {name}}.",
        param="tool_choice",
    )


def convert_messages(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the systemInstruction parts and the contents for OpenAI messages."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = message["role"]
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            content_role, parts = "user", user_parts(message.get("content"), param)
        elif role == "assistant":
            content_role, parts = "model", model_parts(message, param, call_names)
        elif role == "tool":
            content_role = "user"
            parts = [function_response_part(message, param, call_names)]
        else:
            raise InvalidRequestError(
                f"'{param}.role' function is not supported for Gemini models; use "
                "tools and role tool.",
                param=f"{param}.role",
            )
        if not parts:
            continue
        if contents and contents[-1]["role"] == content_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": content_role, "parts": parts})
    return system, contents


def user_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """Return Gemini parts for a user message content."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for index, part in enumerate(content):
        part_param = f"{param}.content[{index}]"
        kind = part["type"]
        if kind == "text":
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        elif kind == "image_url":
            parts.append(image_part(part, part_param))
        elif kind == "input_audio":
            parts.append(_audio_part(part, part_param))
        elif kind == "file":
            parts.append(_file_part(part, part_param))
        else:
            raise InvalidRequestError(
                f"'{part_param}.type' {kind!r} is not supported for Gemini models.",
                param=part_param,
            )
    return parts


def image_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    """Convert an OpenAI image_url part to inlineData or fileData, dropping detail."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"'{param}.image_url.url' must be a non-empty string.", param=param
        )
    if url.startswith(FILE_URL_SCHEMES):
        return {"fileData": {"mimeType": guess_image_type(url), "fileUri": url}}
    return {"inlineData": _inline_data(url, param)}


def guess_image_type(url: str) -> str:
    """Return the image media type for a URL's file extension."""
    path = urlsplit(url).path
    extension = posixpath.splitext(path)[1].lower()
    if extension in IMAGE_TYPES:
        return IMAGE_TYPES[extension]
    guessed, _ = mimetypes.guess_type(path)
    return guessed if guessed and guessed.startswith("image/") else DEFAULT_IMAGE_TYPE


def _inline_data(url: str, param: str) -> dict[str, str]:
    match = DATA_URL.match(url)
    if match is None:
        raise InvalidRequestError(
            f"'{param}' must be an http(s) or gs URL, or a data URL of the form "
            "data:<media type>;base64,<data>.",
            param=param,
        )
    media_type = match.group("media").strip().lower()
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    return {"mimeType": media_type, "data": match.group("data")}


def _audio_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    audio = part.get("input_audio")
    data = audio.get("data") if isinstance(audio, dict) else None
    audio_format = audio.get("format") if isinstance(audio, dict) else None
    if not isinstance(data, str) or not isinstance(audio_format, str):
        raise InvalidRequestError(
            f"'{param}.input_audio' needs string data and format.", param=param
        )
    return {"inlineData": {"mimeType": f"audio/{audio_format}", "data": data}}


def _file_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    file = part.get("file")
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise InvalidRequestError(
            f"'{param}.file.file_data' must be a base64 data URL; file ids are not "
            "supported for Gemini models.",
            param=param,
        )
    return {"inlineData": _inline_data(data_url, param)}


def model_parts(
    message: dict[str, Any], param: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    """Return Gemini parts for an assistant message and note its tool call names.

    Thought signatures come back from the tool call ids and from thinking_blocks
    (see gemini_format), because Gemini wants each one on the part it came with.
    """
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    text = content if isinstance(content, str) else text_of(content)
    if isinstance(content, list):
        refusals = [p.get("refusal") for p in content if p.get("type") == "refusal"]
        text += "".join(item for item in refusals if isinstance(item, str))
    if text:
        parts.append({"text": text})

    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise InvalidRequestError(
            f"'{param}.tool_calls' must be an array.", param=f"{param}.tool_calls"
        )
    for index, call in enumerate(tool_calls):
        parts.append(
            _function_call_part(call, f"{param}.tool_calls[{index}]", call_names)
        )

    signature = text_signature(message.get("thinking_blocks"))
    if signature and parts and not tool_calls:
        parts[-1]["thoughtSignature"] = signature
    return parts


def _function_call_part(
    call: Any, param: str, call_names: dict[str, str]
) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(
            f"'{param}.function.name' must be a string.", param=f"{param}.function.name"
        )
    arguments = function.get("arguments")
    arguments_param = f"{param}.function.arguments"
    try:
        args = orjson.loads(arguments) if arguments else {}
    except (orjson.JSONDecodeError, TypeError):
        raise InvalidRequestError(
            f"'{arguments_param}' must be a JSON string.", param=arguments_param
        ) from None
    if not isinstance(args, dict):
        raise InvalidRequestError(
            f"'{arguments_param}' must encode a JSON object.", param=arguments_param
        )

    # TODO: a function call that another provider made carries no thought signature,
    # and Gemini 3 models reject such a call in the current turn with HTTP 400.
    part: dict[str, Any] = {"functionCall": {"name": function["name"], "args": args}}
    call_id = call.get("id")
    if isinstance(call_id, str) and call_id:
        call_names[call_id] = function["name"]
        signature = signature_from_tool_call_id(call_id)
        if signature:
            part["thoughtSignature"] = signature
    return part


def function_response_part(
    message: dict[str, Any], param: str, call_names: dict[str, str]
) -> dict[str, Any]:
    """Return the functionResponse part for a tool message."""
    call_id = message.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None and isinstance(message.get("name"), str):
        name = message["name"]
    if not name:
        raise InvalidRequestError(
            f"'{param}.tool_call_id' {call_id!r} matches no tool call of an earlier "
            "assistant message, and Gemini needs the function name.",
            param=f"{param}.tool_call_id",
        )
    text = text_of(message.get("content"))
    try:
        parsed = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        parsed = None
    if message.get("is_error") is True:
        response: dict[str, Any] = {"error": text}
    elif isinstance(parsed, dict):
        response = parsed
    else:
        response = {"output": text}
    return {"functionResponse": {"name": name, "response": response}}
