"""Shapes of Gemini's generateContent, shared by the fake Gemini API and Vertex AI.

A reply renders as a candidate whose parts are, in order: the reasoning as a thought
part, the text, then one functionCall part per tool call. The first functionCall
part carries a thoughtSignature; a reply with reasoning and no tool calls carries
one on its last text part. Usage counts thoughts in thoughtsTokenCount, apart from
candidatesTokenCount.
"""

import base64
import logging
from typing import Any

import orjson

from nexus.fakeprovider.reply import (
    Prompt,
    Reply,
    ToolSpec,
    count_words,
    split_pieces,
    stable_id,
)

logger = logging.getLogger(__name__)

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
}
VERTEX_REQUEST_FIELDS = REQUEST_FIELDS | {"labels"}
GENERATION_CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "responseLogprobs",
    "logprobs",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "mediaResolution",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
}
THINKING_CONFIG_FIELDS = {"includeThoughts", "thinkingBudget", "thinkingLevel"}
PART_DATA_FIELDS = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
}
PART_FIELDS = PART_DATA_FIELDS | {
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
}
TOOL_FIELDS = {
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
}
DECLARATION_FIELDS = {
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
}
SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "propertyOrdering",
    "default",
    "example",
}
SCHEMA_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
CALLING_MODES = {"AUTO", "ANY", "NONE", "VALIDATED"}
RESPONSE_MIME_TYPES = {"text/plain", "application/json", "text/x.enum"}


# Fields whose values hold caller data (arguments, schemas, labels) rather than
# message fields. camel_keys leaves the keys inside them as they are.
DATA_FIELDS = {
    "args",
    "response",
    "parametersJsonSchema",
    "responseJsonSchema",
    "labels",
    "default",
    "example",
}


def camel_keys(value: Any) -> Any:
    """Return value with snake_case field names in lowerCamelCase.

    Google's JSON parser accepts both spellings of every field, and the
    google-genai SDK sends some nested objects (thinking_config) in snake_case.
    """
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        name = _camel(key)
        if name in DATA_FIELDS:
            result[name] = item
        elif name == "properties" and isinstance(item, dict):
            result[name] = {prop: camel_keys(schema) for prop, schema in item.items()}
        else:
            result[name] = camel_keys(item)
    return result


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def status_name(status: int) -> str:
    """Return the google.rpc status name for an HTTP status."""
    if status in STATUS_NAMES:
        return STATUS_NAMES[status]
    return "INVALID_ARGUMENT" if status < 500 else "INTERNAL"


def unknown_field(name: str, where: str = "") -> str:
    """Return Google's message for a request field the API does not know."""
    at = f" at '{where}'" if where else ""
    return (
        f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    )


def check_generate_body(raw: dict[str, Any], *, vertex: bool = False) -> str | None:
    """Return the error message for a generateContent body the API rejects, or None."""
    allowed = VERTEX_REQUEST_FIELDS if vertex else REQUEST_FIELDS
    unknown = sorted(key for key in raw if _camel(key) not in allowed)
    if unknown:
        return unknown_field(unknown[0])
    body = camel_keys(raw)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for check in (_check_contents, _check_generation_config, _check_tools):
        problem = check(body)
        if problem:
            return problem
    return None


def _check_contents(body: dict[str, Any]) -> str | None:
    previous_calls = 0
    for index, content in enumerate(body["contents"]):
        where = f"contents[{index}]"
        if not isinstance(content, dict):
            return f"Invalid value at '{where}': must be an object."
        if content.get("role", "user") not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
        for part_index, part in enumerate(parts):
            problem = _check_part(part, f"{where}.parts[{part_index}]")
            if problem:
                return problem
        responses = sum(1 for part in parts if "functionResponse" in part)
        if responses and responses != previous_calls:
            return (
                "Please ensure that the number of function response parts is equal "
                "to the number of function call parts of the function call turn."
            )
        previous_calls = sum(1 for part in parts if "functionCall" in part)
    system = body.get("systemInstruction")
    if system is not None and not isinstance((system or {}).get("parts"), list):
        return "* GenerateContentRequest.system_instruction.parts: must be a list."
    return None


def _check_part(part: Any, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"Invalid value at '{where}': must be an object."
    unknown = sorted(set(part) - PART_FIELDS)
    if unknown:
        return unknown_field(unknown[0], where)
    data = [name for name in PART_DATA_FIELDS if name in part]
    if len(data) != 1:
        return f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one initialized field"
    for name in ("inlineData", "fileData"):
        if name in part and not (part[name] or {}).get("mimeType"):
            return f"* GenerateContentRequest.{where}.{name}.mime_type: must be set."
    response = part.get("functionResponse")
    if response is not None and not isinstance((response or {}).get("response"), dict):
        return f"* GenerateContentRequest.{where}.function_response.response: must be an object."
    return None


def _check_generation_config(body: dict[str, Any]) -> str | None:
    config = body.get("generationConfig") or {}
    unknown = sorted(set(config) - GENERATION_CONFIG_FIELDS)
    if unknown:
        return unknown_field(unknown[0], "generation_config")
    thinking = config.get("thinkingConfig") or {}
    unknown = sorted(set(thinking) - THINKING_CONFIG_FIELDS)
    if unknown:
        return unknown_field(unknown[0], "generation_config.thinking_config")
    mime_type = config.get("responseMimeType")
    if mime_type is not None and mime_type not in RESPONSE_MIME_TYPES:
        return f"* GenerateContentRequest.generation_config.response_mime_type: unsupported {mime_type}."
    if "responseSchema" in config:
        return check_schema(
            config["responseSchema"], "generation_config.response_schema"
        )
    return None


def _check_tools(body: dict[str, Any]) -> str | None:
    for index, tool in enumerate(body.get("tools") or []):
        unknown = sorted(set(tool) - TOOL_FIELDS)
        if unknown:
            return unknown_field(unknown[0], f"tools[{index}]")
        for position, declaration in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{index}].function_declarations[{position}]"
            unknown = sorted(set(declaration) - DECLARATION_FIELDS)
            if unknown:
                return unknown_field(unknown[0], where)
            if not declaration.get("name"):
                return f"* GenerateContentRequest.{where}.name: [FIELD_INVALID] Invalid function name."
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return f"* GenerateContentRequest.{where}: parameters and parameters_json_schema cannot both be set."
            if "parameters" in declaration:
                problem = check_schema(declaration["parameters"], f"{where}.parameters")
                if problem:
                    return problem
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    unknown = sorted(set(calling) - {"mode", "allowedFunctionNames"})
    if unknown:
        return unknown_field(unknown[0], "tool_config.function_calling_config")
    mode = calling.get("mode", "AUTO")
    if mode not in CALLING_MODES:
        return f"Invalid value at 'tool_config.function_calling_config.mode': {mode!r}"
    if calling.get("allowedFunctionNames") and mode not in ("ANY", "VALIDATED"):
        return "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: only allowed with mode ANY."
    return None


def check_schema(schema: Any, where: str) -> str | None:
    """Return the error for a schema outside Gemini's Schema object, or None."""
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}': must be an object."

    unknown = sorted(set(schema) - SCHEMA_FIELDS)
    if unknown:
        return unknown_field(unknown[0], where)
    kind = schema.get("type")
    if kind is not None and (
        not isinstance(kind, str) or kind.upper() not in SCHEMA_TYPES
    ):
        return f"Invalid value at '{where}.type': {kind!r}"
    if (
        isinstance(kind, str)
        and kind.upper() == "OBJECT"
        and schema.get("properties") == {}
    ):
        return f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type"
    enum = schema.get("enum")
    if enum is not None and not all(isinstance(item, str) for item in enum):
        return f"Invalid value at '{where}.enum': enum values must be strings."

    children = [
        (f"{where}.properties.{name}", item)
        for name, item in (schema.get("properties") or {}).items()
    ]
    if "items" in schema:
        children.append((f"{where}.items", schema["items"]))
    children += [
        (f"{where}.any_of[{i}]", item)
        for i, item in enumerate(schema.get("anyOf") or [])
    ]
    for child_where, child in children:
        problem = check_schema(child, child_where)
        if problem:
            return problem
    return None


def prompt(body: dict[str, Any], model: str) -> Prompt:
    """Read the reply-relevant parts of a generateContent request."""
    contents = [content for content in body["contents"] if isinstance(content, dict)]
    system = body.get("systemInstruction") or {}
    texts = [_parts_text(system.get("parts"))]
    user_texts = []
    for content in contents:
        text = _parts_text(content.get("parts"))
        texts.append(text)
        for part in content.get("parts") or []:
            if isinstance(part, dict) and "functionResponse" in part:
                texts.append(
                    orjson.dumps(part["functionResponse"].get("response")).decode()
                )
        if content.get("role", "user") == "user" and text:
            user_texts.append(text)
    last = contents[-1] if contents else {}
    last_parts = last.get("parts") or []
    ends_with_user_text = (
        last.get("role", "user") == "user"
        and bool(_parts_text(last_parts))
        and not any("functionResponse" in part for part in last_parts)
    )

    tools = []
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            schema = declaration.get("parameters") or declaration.get(
                "parametersJsonSchema"
            )
            tools.append(ToolSpec(declaration["name"], _lower_types(schema or {})))
    config = body.get("generationConfig") or {}
    thinking = config.get("thinkingConfig") or {}
    return Prompt(
        model=model,
        last_user_text=user_texts[-1] if user_texts else "",
        input_words=sum(count_words(text) for text in texts),
        ends_with_user_text=ends_with_user_text,
        tools=tuple(tools),
        wants_reasoning=thinking.get("includeThoughts") is True,
        max_output_tokens=config.get("maxOutputTokens"),
    )


def _parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    texts = [
        part["text"]
        for part in parts
        if isinstance(part, dict)
        and isinstance(part.get("text"), str)
        and not part.get("thought")
    ]
    return " ".join(text for text in texts if text)


def _lower_types(schema: dict[str, Any]) -> dict[str, Any]:
    properties = {
        name: {**item, "type": item["type"].lower()}
        if isinstance(item, dict) and isinstance(item.get("type"), str)
        else item
        for name, item in (schema.get("properties") or {}).items()
    }
    return {**schema, "properties": properties}


def signature(reply: Reply) -> str:
    """Return the thought signature of a reply, base64 as the API sends bytes."""
    seed = stable_id("sig-", reply.text, reply.reasoning, str(len(reply.tool_calls)))
    return base64.b64encode(seed.encode()).decode()


def candidate_parts(reply: Reply) -> list[dict[str, Any]]:
    """Return the finished parts of a reply: thought, text, then function calls."""
    parts: list[dict[str, Any]] = []
    if reply.reasoning:
        parts.append({"text": reply.reasoning, "thought": True})
    if reply.text or not reply.tool_calls:
        parts.append({"text": reply.text})
    for position, call in enumerate(reply.tool_calls):
        part: dict[str, Any] = {
            "functionCall": {"name": call.name, "args": orjson.loads(call.arguments)}
        }
        if position == 0:
            part["thoughtSignature"] = signature(reply)
        parts.append(part)
    if reply.reasoning and not reply.tool_calls:
        parts[-1]["thoughtSignature"] = signature(reply)
    return parts


def usage_metadata(reply: Reply) -> dict[str, Any]:
    """Return usageMetadata, whose candidatesTokenCount excludes thoughts."""
    usage = reply.usage
    metadata: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
    }
    if usage.reasoning_tokens:
        metadata["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_tokens
    return metadata


def _response(
    reply: Reply, response_id: str, candidate: dict[str, Any], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": reply.model,
        "responseId": response_id,
    }


def response_object(reply: Reply, response_id: str) -> dict[str, Any]:
    """Return a non-streamed GenerateContentResponse."""
    candidate = {
        "content": {"parts": candidate_parts(reply), "role": "model"},
        "finishReason": FINISH_REASONS.get(reply.finish_reason, reply.finish_reason),
        "index": 0,
    }
    return _response(reply, response_id, candidate, usage_metadata(reply))


def stream_responses(reply: Reply, response_id: str) -> list[dict[str, Any]]:
    """Return the streamed responses: a word per event, a whole function call per event.

    Every event carries the prompt's usage, and the last one carries finishReason
    and the full usage, as Gemini streams do.
    """
    pieces: list[dict[str, Any]] = []
    for part in candidate_parts(reply):
        text = part.get("text")
        if not isinstance(text, str) or not text:
            pieces.append(part)
            continue
        words = split_pieces(text)
        for position, word in enumerate(words):
            piece = {**part, "text": word}
            if position < len(words) - 1:
                piece.pop("thoughtSignature", None)
            pieces.append(piece)

    prompt_usage = {
        "promptTokenCount": reply.usage.input_tokens,
        "totalTokenCount": reply.usage.input_tokens,
    }
    events = []
    for position, piece in enumerate(pieces):
        candidate: dict[str, Any] = {
            "content": {"parts": [piece], "role": "model"},
            "index": 0,
        }
        usage = prompt_usage
        if position == len(pieces) - 1:
            candidate["finishReason"] = FINISH_REASONS.get(
                reply.finish_reason, reply.finish_reason
            )
            usage = usage_metadata(reply)
        events.append(_response(reply, response_id, candidate, usage))
    return events


def sse(data: Any) -> bytes:
    """Encode one Gemini server-sent event, which Gemini ends with CRLF CRLF."""
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"
