"""The canonical request and answer, which are OpenAI-shaped.

Every ingress decodes into a ChatRequest or EmbeddingsRequest and every provider codec
encodes from it. Answers are OpenAI `chat.completion` objects and streams are
`chat.completion.chunk` objects, with usage carried alongside as a Usage value.
"""

from dataclasses import dataclass, field
from typing import Any

from nexus.engine.errors import InvalidRequestError

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


@dataclass
class Usage:
    """Token counts of one response. Cached and cache-write tokens are part of input."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = False

    def merge(self, other: "Usage") -> None:
        """Take every non-zero count of other; streams report usage in several events."""
        for name in (
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        ):
            value = getattr(other, name)
            if value:
                setattr(self, name, value)
        self.reported = self.reported or other.reported

    def to_openai(self) -> dict[str, Any]:
        """Return the OpenAI `usage` object."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @classmethod
    def from_openai(cls, usage: Any) -> "Usage":
        """Read an OpenAI `usage` object; missing or malformed fields count as zero."""
        if not isinstance(usage, dict):
            return cls()
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            cached_tokens=_int(prompt_details.get("cached_tokens"))
            if isinstance(prompt_details, dict)
            else 0,
            reasoning_tokens=_int(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, dict)
            else 0,
            reported=True,
        )


def _int(value: Any) -> int:
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and value > 0
        else 0
    )


@dataclass
class ChatRequest:
    """A validated OpenAI chat completions body and what the gateway derived from it."""

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool = False
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]

    @property
    def tools(self) -> list[dict[str, Any]]:
        return self.body.get("tools") or []


@dataclass
class EmbeddingsRequest:
    """A validated OpenAI embeddings body; inputs are normalised to a list."""

    body: dict[str, Any]
    model: str
    inputs: list[Any]
    encoding_format: str = "float"


@dataclass
class ChatResult:
    """A complete canonical response and its usage."""

    body: dict[str, Any]
    usage: Usage


@dataclass
class EmbeddingsResult:
    """Embedding vectors (as float lists) and usage."""

    vectors: list[list[float]]
    usage: Usage
    model: str = ""


def expect_type(
    body: dict[str, Any], name: str, kinds: type | tuple[type, ...], label: str
) -> Any:
    """Return body[name] if it is absent or of the given type, else raise a 400."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (
        kinds if isinstance(kinds, tuple) else (kinds,)
    ):
        raise InvalidRequestError(
            f"'{name}' must be {label}, got a boolean.", param=name
        )
    if not isinstance(value, kinds):
        raise InvalidRequestError(
            f"'{name}' must be {label}, got {type(value).__name__}.", param=name
        )
    return value


def validate_chat_body(body: Any) -> ChatRequest:
    """Check the shape of an OpenAI chat completions body and wrap it."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "'model' is required and must be a non-empty string.", param="model"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty array.", param="messages"
        )
    for index, message in enumerate(messages):
        _validate_message(message, index)
    stream = expect_type(body, "stream", bool, "a boolean") or False
    for name in ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs"):
        expect_type(body, name, int, "an integer")
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        expect_type(body, name, (int, float), "a number")
    tools = expect_type(body, "tools", list, "an array")
    for index, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise InvalidRequestError(
                f"'tools[{index}]' must be an object with a 'function'.",
                param=f"tools[{index}]",
            )
        if not isinstance(tool["function"].get("name"), str):
            raise InvalidRequestError(
                f"'tools[{index}].function.name' must be a string.",
                param=f"tools[{index}].function.name",
            )
    stream_options = expect_type(body, "stream_options", dict, "an object") or {}
    include_usage = stream_options.get("include_usage") is True
    expect_type(body, "response_format", dict, "an object")
    return ChatRequest(
        body=body, model=model, stream=stream, include_usage=include_usage
    )


def _validate_message(message: Any, index: int) -> None:
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise InvalidRequestError(f"'{param}' must be an object.", param=param)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequestError(
            f"'{param}.role' must be one of {sorted(ROLES)}, got {role!r}.",
            param=f"{param}.role",
        )
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise InvalidRequestError(
            f"'{param}.content' must be a string or an array of parts.",
            param=f"{param}.content",
        )
    if isinstance(content, list):
        for part_index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise InvalidRequestError(
                    f"'{param}.content[{part_index}]' must be an object with a 'type'.",
                    param=f"{param}.content[{part_index}]",
                )
    if content is None and role in {"user", "system", "developer"}:
        raise InvalidRequestError(
            f"'{param}.content' is required for role {role}.", param=f"{param}.content"
        )


def validate_embeddings_body(body: Any) -> EmbeddingsRequest:
    """Check the shape of an OpenAI embeddings body and wrap it."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "'model' is required and must be a non-empty string.", param="model"
        )
    raw = body.get("input")
    if isinstance(raw, str):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list) and raw:
        inputs = raw
    else:
        raise InvalidRequestError(
            "'input' is required and must be a string or a non-empty array.",
            param="input",
        )
    if not all(isinstance(item, str) for item in inputs) and not _is_token_input(
        inputs
    ):
        raise InvalidRequestError(
            "'input' must hold strings or arrays of token ids.", param="input"
        )
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise InvalidRequestError(
            "'encoding_format' must be float or base64.", param="encoding_format"
        )
    expect_type(body, "dimensions", int, "an integer")
    return EmbeddingsRequest(
        body=body, model=model, inputs=inputs, encoding_format=encoding
    )


def _is_token_input(inputs: list[Any]) -> bool:
    if all(isinstance(item, int) and not isinstance(item, bool) for item in inputs):
        return True
    return all(
        isinstance(item, list) and all(isinstance(t, int) for t in item)
        for item in inputs
    )


def text_of(content: Any) -> str:
    """Return the text parts of an OpenAI message content joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def result_to_chunks(result: ChatResult) -> list[dict[str, Any]]:
    """Return a complete answer as canonical stream chunks, for replaying it as a stream."""
    body = result.body
    base = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    chunks = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        index = choice.get("index", 0)
        delta: dict[str, Any] = {"role": "assistant"}
        if message.get("reasoning_content"):
            delta["reasoning_content"] = message["reasoning_content"]
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                dict(call, index=position)
                for position, call in enumerate(message["tool_calls"])
            ]
        # Carriers such as thinking_blocks and annotations replay as they were.
        for name, value in message.items():
            if name not in delta and name != "tool_calls" and value:
                delta[name] = value
        extras = {
            name: value
            for name, value in choice.items()
            if name not in ("index", "message", "finish_reason") and value is not None
        }
        chunks.append(
            {
                **base,
                "choices": [{"index": index, "delta": delta, "finish_reason": None}],
            }
        )
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": index,
                        "delta": {},
                        "finish_reason": choice.get("finish_reason", "stop"),
                        **extras,
                    }
                ],
            }
        )
    chunks.append({**base, "choices": [], "usage": result.usage.to_openai()})
    return chunks
