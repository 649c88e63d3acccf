"""Anthropic Messages API codec.

Requests go to `{base_url}/v1/messages`, where base_url is the host root. Canonical
(OpenAI chat) requests are translated field by field; same-format traffic from the
`/v1/messages` ingress can bypass the translation through `build_native_request`
and `NativeStreamObserver`.

Connection options:

- `default_max_tokens` (int, default 4096): max_tokens sent when the caller set
  neither max_tokens nor max_completion_tokens, because Anthropic requires it.
- `thinking_mode` ("budget" or "adaptive", default "budget"): how reasoning_effort
  is sent. Budget mode sends `thinking: {type: enabled, budget_tokens}` using the
  table in anthropic_format.EFFORT_BUDGETS, which Claude 4.5 and older models need.
  Adaptive mode sends `thinking: {type: adaptive}` with `output_config.effort`,
  which Claude 4.7 and newer models need.
"""

import logging
import time
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, Usage
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.anthropic_format import (
    ADAPTIVE_EFFORTS,
    EXTENSION_KEY,
    MIN_THINKING_BUDGET,
    STATUS_BY_ERROR_TYPE,
    anthropic_tool,
    anthropic_tool_choice,
    anthropic_tool_id,
    document_block,
    error_type_for,
    finish_reason_for,
    image_block,
    merge_usage_fields,
    openai_usage,
    thinking_budget_for,
    usage_from_anthropic,
)
from nexus.engine.providers.base import ProviderAdapter, StreamDecoder, load_json
from nexus.engine.sse import Event, SSEParser

logger = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

# The synthetic tool that emulates response_format: the model is made to call it, and
# its input comes back to the caller as the message content.
RESPONSE_FORMAT_TOOL = "json_response"


class AnthropicAdapter(ProviderAdapter):
    """Anthropic's Messages API."""

    name = "anthropic"
    native_format = "anthropic"
    default_base_url = "https://api.anthropic.com"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.connection.credential:
            headers["x-api-key"] = self.connection.credential
        return headers

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Translate a canonical chat request into an Anthropic Messages request."""
        body = build_messages_body(request, upstream_model, self.connection.options)
        return self.json_request(self.messages_url, body, self._headers(request.stream))

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Translate an Anthropic message into an OpenAI chat.completion."""
        parsed = load_json(body, self.connection.name)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("content"), list):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned a message without content."
            )

        message = message_from_blocks(parsed["content"], response_format_tool(request))
        usage = usage_from_anthropic(parsed.get("usage"))
        limit = _max_tokens(request, self.connection.options)
        finish_reason = _finish_reason(parsed.get("stop_reason"), message, usage, limit)
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "finish_reason": finish_reason,
            "logprobs": None,
        }
        if isinstance(parsed.get("stop_sequence"), str):
            choice["stop_reason"] = parsed["stop_sequence"]

        completion = {
            "id": str(parsed.get("id") or ""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(parsed.get("model") or ""),
            "choices": [choice],
            "usage": openai_usage(usage),
        }
        return ChatResult(body=completion, usage=usage)

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        limit = _max_tokens(request, self.connection.options)
        return AnthropicStreamDecoder(
            self.connection.name, response_format_tool(request), limit
        )

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Anthropic's `{type: error, error: {type, message}}`; 429 and 529 keep their status."""
        error_type, message = _error_fields(body)
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: {message}",
            upstream_status=status,
            error_type=error_type_for(status, error_type),
        )

    def build_native_request(
        self, body: dict[str, Any], upstream_model: str, *, beta: str | None = None
    ) -> UpstreamRequest:
        """Forward a caller's Anthropic body unchanged except for the model.

        beta is the caller's `anthropic-beta` header, forwarded when given.
        """
        payload = dict(body)
        payload["model"] = upstream_model
        headers = self._headers(payload.get("stream") is True)
        if beta:
            headers["anthropic-beta"] = beta
        return self.json_request(self.messages_url, payload, headers)

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = self.auth_headers()
        if stream:
            headers["accept"] = "text/event-stream"
        return headers


def build_messages_body(
    request: ChatRequest, upstream_model: str, options: dict[str, Any]
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
        "max_tokens": _max_tokens(request, options),
    }
    if system:
        body["system"] = system
    body["messages"] = messages
    _apply_sampling(body, source)
    thinking = _apply_thinking(body, request, options)
    _apply_tools(body, request, thinking)
    if request.stream:
        body["stream"] = True
    return body


def _max_tokens(request: ChatRequest, options: dict[str, Any] | None = None) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise InvalidRequestError(
                    f"'{name}' must be at least 1, got {value}.", param=name
                )
            return value
    configured = (options or {}).get("default_max_tokens")
    if (
        isinstance(configured, int)
        and not isinstance(configured, bool)
        and configured > 0
    ):
        return configured
    return DEFAULT_MAX_TOKENS


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


def _apply_thinking(
    body: dict[str, Any], request: ChatRequest, options: dict[str, Any]
) -> bool:
    """Set thinking from the caller's exact Anthropic fields or from reasoning_effort.

    The exact fields (thinking, output_config.effort and top_k) come from the
    `/v1/messages` ingress through request.extensions. Returns whether thinking is
    on, because Anthropic then rejects forced tool use.
    """
    extension = request.extensions.get(EXTENSION_KEY) or {}
    if isinstance(extension.get("top_k"), int):
        body["top_k"] = extension["top_k"]
    if isinstance(extension.get("effort"), str):
        body.setdefault("output_config", {})["effort"] = extension["effort"]
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
    if options.get("thinking_mode") == "adaptive":
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
    # The model must call a tool: one of the caller's, or the response tool to answer.
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


def message_from_blocks(blocks: list[Any], response_tool: str | None) -> dict[str, Any]:
    """Return the OpenAI assistant message for Anthropic content blocks.

    The input of the response_format tool becomes text content; other tool_use
    blocks become tool_calls. Thinking goes to reasoning_content and thinking_blocks.
    """
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif (
            kind == "tool_use" and block.get("name") == response_tool and response_tool
        ):
            texts.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
            thinking_blocks.append(
                {
                    "type": "thinking",
                    "thinking": str(block.get("thinking") or ""),
                    "signature": str(block.get("signature") or ""),
                }
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append(
                {"type": "redacted_thinking", "data": str(block.get("data") or "")}
            )
        else:
            logger.debug("skipping Anthropic content block of type %s", kind)

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


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {
            "name": str(block.get("name") or ""),
            "arguments": orjson.dumps(block.get("input") or {}).decode(),
        },
    }


def _finish_reason(
    stop_reason: Any, message: dict[str, Any], usage: Usage, max_tokens: int
) -> str:
    has_tool_calls = bool(message.get("tool_calls"))
    if stop_reason == "tool_use" and not has_tool_calls:
        # Only the response_format tool was called, so the answer is complete content.
        return "stop"
    # The limit sent upstream may exceed this when thinking raised it, so an unknown
    # stop_reason on a thinking request may read as stop where it was truncated.
    truncated = usage.output_tokens >= max_tokens
    return finish_reason_for(
        stop_reason, truncated=truncated, has_tool_calls=has_tool_calls
    )


def _error_fields(body: bytes) -> tuple[str, str]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return "", text or "no error message"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return "", "no error message"
    return str(error.get("type") or ""), str(error.get("message") or "no error message")


def stream_error(provider: str, error: Any) -> ProviderStatusError:
    """Return the error for an `event: error` inside an Anthropic stream."""
    error = error if isinstance(error, dict) else {}
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or "no error message")
    return ProviderStatusError(
        f"Provider {provider} reported an error mid-stream: {message}",
        upstream_status=STATUS_BY_ERROR_TYPE.get(error_type, 500),
        error_type=error_type,
    )


def parse_event(event: Event, provider: str) -> dict[str, Any] | None:
    """Return the JSON object of an Anthropic stream event, None for an empty one."""
    if not event.data:
        return None
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise ProviderProtocolError(
            f"Provider {provider} streamed an event that is not JSON."
        ) from None
    if not isinstance(data, dict):
        raise ProviderProtocolError(
            f"Provider {provider} streamed an event that is not an object."
        )
    data.setdefault("type", event.event)
    return data


class _Block:
    """One open Anthropic content block in a stream."""

    def __init__(
        self, kind: str, tool_index: int = -1, initial_input: Any = None
    ) -> None:
        self.kind = kind
        self.tool_index = tool_index
        self.initial_input = initial_input
        self.arguments_sent = False
        self.thinking: list[str] = []
        self.signature = ""


class AnthropicStreamDecoder(StreamDecoder):
    """Decode Anthropic Messages SSE into OpenAI chat.completion.chunk objects.

    Tool calls are numbered 0, 1, ... in the order their tool_use blocks start,
    independent of the Anthropic block index, which also counts text and thinking
    blocks. The finish chunk and a usage-only chunk (choices []) follow message_stop.
    """

    def __init__(
        self, provider: str, response_tool: str | None = None, max_tokens: int = 0
    ) -> None:
        super().__init__()
        self.provider = provider
        self.response_tool = response_tool
        self.max_tokens = max_tokens
        self.parser = SSEParser()
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.blocks: dict[int, _Block] = {}
        self.tool_count = 0
        self.stop_reason: Any = None
        self.stop_sequence: Any = None
        self.raw_usage: dict[str, Any] = {}

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._decode(self.parser.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._decode(self.parser.finish())

    def _decode(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in events:
            data = parse_event(event, self.provider)
            if data is not None and not self.finished:
                chunks.extend(self._handle(data))
        return chunks

    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type")
        if kind == "message_start":
            return self._message_start(data.get("message"))
        if kind == "content_block_start":
            return self._block_start(data.get("index"), data.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(data.get("index"), data.get("delta"))
        if kind == "content_block_stop":
            return self._block_stop(data.get("index"))
        if kind == "message_delta":
            delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
            self.stop_reason = delta.get("stop_reason", self.stop_reason)
            self.stop_sequence = delta.get("stop_sequence", self.stop_sequence)
            self._merge_usage(data.get("usage"))
            return []
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            raise stream_error(self.provider, data.get("error"))
        return []

    def _message_start(self, message: Any) -> list[dict[str, Any]]:
        message = message if isinstance(message, dict) else {}
        self.id = str(message.get("id") or "")
        self.model = str(message.get("model") or "")
        self._merge_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: Any, block: Any) -> list[dict[str, Any]]:
        block = block if isinstance(block, dict) else {}
        kind = block.get("type")
        if (
            kind == "tool_use"
            and self.response_tool
            and block.get("name") == self.response_tool
        ):
            self.blocks[index] = _Block("response", initial_input=block.get("input"))
            return []
        if kind == "tool_use":
            state = _Block("tool", self.tool_count, block.get("input"))
            self.blocks[index] = state
            self.tool_count += 1
            call = {
                "index": state.tool_index,
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "redacted_thinking":
            self.blocks[index] = _Block("redacted")
            return [
                self._chunk(
                    {
                        "thinking_blocks": [
                            {
                                "type": "redacted_thinking",
                                "data": str(block.get("data") or ""),
                            }
                        ]
                    }
                )
            ]
        if kind in ("text", "thinking"):
            self.blocks[index] = _Block(kind)
            initial = block.get(kind)
            if isinstance(initial, str) and initial:
                return self._block_delta(
                    index, {"type": f"{kind}_delta", kind: initial}
                )
            return []
        self.blocks[index] = _Block("other")
        return []

    def _block_delta(self, index: Any, delta: Any) -> list[dict[str, Any]]:
        state = self.blocks.get(index)
        if state is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            state.thinking.append(delta["thinking"])
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and isinstance(delta.get("signature"), str):
            state.signature += delta["signature"]
            return []
        if kind == "input_json_delta":
            # The first fragment of a tool block is usually empty and carries nothing.
            return self._arguments(state, delta.get("partial_json"))
        return []

    def _arguments(self, state: _Block, fragment: Any) -> list[dict[str, Any]]:
        if not isinstance(fragment, str) or not fragment:
            return []
        state.arguments_sent = True
        if state.kind == "response":
            return [self._chunk({"content": fragment})]
        if state.kind == "tool":
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": state.tool_index,
                                "function": {"arguments": fragment},
                            }
                        ]
                    }
                )
            ]
        return []

    def _block_stop(self, index: Any) -> list[dict[str, Any]]:
        state = self.blocks.get(index)
        if state is None:
            return []
        if (
            state.kind in ("tool", "response")
            and not state.arguments_sent
            and state.initial_input
        ):
            # Some Anthropic-compatible servers send the whole input in the start event.
            return self._arguments(state, orjson.dumps(state.initial_input).decode())
        if state.kind == "thinking":
            block = {
                "type": "thinking",
                "thinking": "".join(state.thinking),
                "signature": state.signature,
            }
            return [self._chunk({"thinking_blocks": [block]})]
        return []

    def _message_stop(self) -> list[dict[str, Any]]:
        self.finished = True
        truncated = (
            bool(self.max_tokens) and self.usage.output_tokens >= self.max_tokens
        )
        if self.stop_reason == "tool_use" and self.tool_count == 0:
            finish_reason = "stop"
        else:
            finish_reason = finish_reason_for(
                self.stop_reason,
                truncated=truncated,
                has_tool_calls=self.tool_count > 0,
            )
        final = self._chunk({}, finish_reason)
        if isinstance(self.stop_sequence, str):
            final["choices"][0]["stop_reason"] = self.stop_sequence
        usage_chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": openai_usage(self.usage),
        }
        return [final, usage_chunk]

    def _merge_usage(self, usage: Any) -> None:
        merge_usage_fields(self.raw_usage, usage)
        if isinstance(usage, dict):
            self.usage = usage_from_anthropic(self.raw_usage)

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


class NativeStreamObserver:
    """Read usage and completion from an Anthropic stream passed through unchanged."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.raw_usage: dict[str, Any] = {}
        self.usage = Usage()
        self.finished = False
        self.stop_reason: str | None = None
        self.error: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        """Observe data; malformed events are skipped, since the caller gets the bytes anyway."""
        for event in self.parser.feed(data):
            self._observe(event)

    def finish(self) -> None:
        """Observe an event left without its closing blank line."""
        for event in self.parser.finish():
            self._observe(event)

    def _observe(self, event: Event) -> None:
        try:
            data = parse_event(event, "anthropic")
        except ProviderProtocolError:
            return
        if data is None:
            return
        kind = data.get("type")
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self._merge_usage(data["message"].get("usage"))
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop_reason = delta["stop_reason"]
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            self.error = (
                data.get("error") if isinstance(data.get("error"), dict) else {}
            )

    def _merge_usage(self, usage: Any) -> None:
        merge_usage_fields(self.raw_usage, usage)
        if isinstance(usage, dict):
            self.usage = usage_from_anthropic(self.raw_usage)


def usage_from_native(body: dict[str, Any]) -> Usage:
    """Return the canonical usage of a non-streamed Anthropic message."""
    return usage_from_anthropic(body.get("usage") if isinstance(body, dict) else None)
