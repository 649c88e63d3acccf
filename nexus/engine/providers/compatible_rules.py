"""The vendor row type of OpenAI-compatible vendors and the rewrites it drives.

nexus.engine.providers.compatible contains the rows and the codec class that applies
these rewrites to outgoing bodies and incoming responses.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from nexus.engine.errors import InvalidRequestError

logger = logging.getLogger(__name__)


ALL_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})


@dataclass(frozen=True)
class ModelRule:
    """Parameters that the vendor's models matching pattern (a regex) reject."""

    pattern: str
    drop: frozenset[str]

    def matches(self, model: str) -> bool:
        return re.search(self.pattern, model) is not None


@dataclass(frozen=True)
class CompatibleVendor:
    """One OpenAI-compatible vendor: where it is, how it authenticates, what it rejects.

    rename maps OpenAI parameter names to the vendor's (applied before drop). allowed,
    when set, keeps only those top-level parameters. ranges clamps numeric
    parameters into (low, high). reasoning_fields name the message and delta fields
    that carry reasoning text, which become `reasoning_content`. thinking_chunks
    reads Mistral-style content lists with `thinking` chunks. usage_fields name
    objects whose `usage` contains the usage when the top-level one is missing.
    """

    name: str
    base_url: str
    auth_header: str = "authorization"
    auth_scheme: str = "Bearer"
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    allowed: frozenset[str] | None = None
    message_drop: frozenset[str] = frozenset()
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    max_n: int | None = None
    supports_tools: bool = True
    response_formats: frozenset[str] = ALL_RESPONSE_FORMATS
    stream_options: bool = True
    reasoning_fields: tuple[str, ...] = ()
    thinking_chunks: bool = False
    usage_fields: tuple[str, ...] = ()
    model_rules: tuple[ModelRule, ...] = ()
    embeddings: bool = False
    embeddings_rename: Mapping[str, str] = field(default_factory=dict)


def normalize_reasoning(message: dict[str, Any], vendor: CompatibleVendor) -> None:
    """Move a vendor's reasoning text in a message or delta to reasoning_content."""
    if vendor.thinking_chunks and isinstance(message.get("content"), list):
        text, reasoning = _split_thinking_chunks(message["content"])
        message["content"] = text
        if reasoning:
            message["reasoning_content"] = (
                message.get("reasoning_content") or ""
            ) + reasoning
    for name in vendor.reasoning_fields:
        if name == "reasoning_content" or not isinstance(message.get(name), str):
            continue
        value = message.pop(name)
        if not message.get("reasoning_content"):
            message["reasoning_content"] = value


def _split_thinking_chunks(chunks: list[Any]) -> tuple[str, str]:
    texts: list[str] = []
    reasoning: list[str] = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text" and isinstance(chunk.get("text"), str):
            texts.append(chunk["text"])
        elif chunk.get("type") == "thinking":
            for part in chunk.get("thinking") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    reasoning.append(part["text"])
    return "".join(texts), "".join(reasoning)


def nested_usage(data: dict[str, Any], vendor: CompatibleVendor) -> Any:
    """Return the usage inside one of the vendor's usage_fields objects, or None."""
    for name in vendor.usage_fields:
        holder = data.get(name)
        if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
            return holder["usage"]
    return None


def check_tools(body: dict[str, Any], vendor: CompatibleVendor) -> None:
    """Raise 400 for tools on a vendor without function calling, unless forbidden."""
    if vendor.supports_tools or not body.get("tools"):
        return
    if body.get("tool_choice") == "none":
        # The caller forbade tool calls, so leaving the tools out changes nothing.
        body.pop("tools")
        body.pop("tool_choice")
        body.pop("parallel_tool_calls", None)
        return
    raise InvalidRequestError(
        f"Provider type {vendor.name} does not support tools (function calling); "
        "remove 'tools' or use a model on another provider.",
        param="tools",
    )


def rewrite_response_format(body: dict[str, Any], vendor: CompatibleVendor) -> None:
    """Replace a response_format type the vendor lacks by one it has, or raise 400."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return
    kind = response_format.get("type")
    if kind in vendor.response_formats:
        return
    if kind == "json_object" and "json_schema" in vendor.response_formats:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "json_object", "schema": {"type": "object"}},
        }
        return
    if kind == "json_schema" and "json_object" in vendor.response_formats:
        # NOTE: the schema is not enforced, only that the reply is a JSON object.
        body["response_format"] = {"type": "json_object"}
        return
    raise InvalidRequestError(
        f"Provider type {vendor.name} does not support response_format {kind!r}.",
        param="response_format",
    )


def clamp_ranges(body: dict[str, Any], vendor: CompatibleVendor) -> None:
    """Clamp the numeric parameters the vendor limits into its ranges."""
    for name, (low, high) in vendor.ranges.items():
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            body[name] = min(max(value, low), high)


def check_n(body: dict[str, Any], vendor: CompatibleVendor) -> None:
    """Raise 400 when n requests more choices than the vendor returns."""
    n = body.get("n")
    if vendor.max_n is None or not isinstance(n, int) or n <= vendor.max_n:
        return
    raise InvalidRequestError(
        f"Provider type {vendor.name} returns at most {vendor.max_n} choice(s) per "
        f"request, but n is {n}.",
        param="n",
    )


def without_fields(message: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """Return message without the named fields; the original is left unchanged."""
    if not any(name in message for name in names):
        return message
    return {key: value for key, value in message.items() if key not in names}


def error_fields(body: bytes) -> tuple[str, str]:
    """Return the message and error type of an OpenAI-like error body.

    Besides `{error: {message, type}}` this reads `{message, type}` with a message
    that is an object (Mistral's validation errors) and FastAPI's `{detail: ...}`.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return text or "no error message", ""
    if not isinstance(parsed, dict):
        return "no error message", ""
    error = parsed.get("error")
    if isinstance(error, dict):
        return _text(error.get("message")), str(error.get("type") or "")
    if isinstance(error, str):
        return error, str(parsed.get("type") or "")
    message = parsed.get("message", parsed.get("detail"))
    return _text(message), str(parsed.get("type") or "")


def _text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    if value in (None, "", [], {}):
        return "no error message"
    return orjson.dumps(value).decode()[:500]
