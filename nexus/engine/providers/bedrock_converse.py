"""Translation of canonical (OpenAI chat) requests into Bedrock Converse bodies.

response_format is emulated like on Anthropic: a tool named RESPONSE_FORMAT_TOOL with
the caller's schema is forced, and its input comes back as the message content.
Messages are converted by bedrock_messages and responses by bedrock_response.
"""

import logging
from dataclasses import dataclass
from typing import Any

from nexus.engine.canonical import ChatRequest
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.anthropic_format import thinking_budget_for
from nexus.engine.providers.bedrock_messages import convert_messages

logger = logging.getLogger(__name__)

RESPONSE_FORMAT_TOOL = "json_response"

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
        # Claude rejects forced tool use while thinking, so the system prompt requests it.
        body.setdefault("system", []).append(
            {
                "text": f"Give your final answer by calling the {RESPONSE_FORMAT_TOOL} tool."
            }
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
            "'response_format.json_schema' must be an object with an object 'schema'.",
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
