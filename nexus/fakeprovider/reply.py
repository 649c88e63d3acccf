"""Build the fake model's deterministic reply from a vendor-neutral prompt.

Rules, shared by every vendor:

- The reply text is ``"Echo: " + last user text``. The last user text is the text of
  the most recent user message that contains text, with its text parts joined by one
  space.
- Token counts are whitespace-separated words. Input tokens are the words of every
  text in the prompt (system prompt, messages, tool results); tool definitions are not
  counted. Output tokens are the words of the reply text, plus the words of the
  reasoning text, plus for each tool call the words of ``name + " " + arguments``.
- The reply is a tool call when the request defines tools, the conversation ends with
  a user text turn (not with a tool result) and that text contains ``call <name>``
  for a defined tool name. Only the first such name is called, unless the text also
  contains the word ``parallel``: then every named tool is called, and a single named
  tool is called twice. Arguments fill each required parameter of the tool's JSON
  schema with a placeholder of its type (``{}`` when nothing is required).
- When the request enables reasoning, the reply carries the reasoning text
  ``"Thinking about: " + last user text``.
- A max output token limit cuts the reply text to that many words and sets the
  finish reason to ``"length"``.
"""

import dataclasses
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

logger = logging.getLogger(__name__)

ECHO_PREFIX = "Echo: "
REASONING_PREFIX = "Thinking about: "

_CALL_PATTERN = re.compile(r"\bcall\s+([A-Za-z0-9_.-]+)")
_PARALLEL_PATTERN = re.compile(r"\bparallel\b", re.IGNORECASE)
_PIECE_PATTERN = re.compile(r"\s*\S+\s*")
_TEXT_PART_TYPES = ("text", "input_text", "output_text")
_PLACEHOLDERS: dict[str, Any] = {
    "string": "test",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}


@dataclass(frozen=True)
class ToolSpec:
    """A function tool offered by the request: its name and JSON schema."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """The parts of a chat request that the fake model's reply depends on."""

    model: str
    last_user_text: str
    input_words: int
    ends_with_user_text: bool
    tools: tuple[ToolSpec, ...] = ()
    wants_reasoning: bool = False
    max_output_tokens: int | None = None
    tool_call_id_prefix: str = "call_"


@dataclass(frozen=True)
class ToolCall:
    """A tool call in the reply; ``arguments`` is a JSON object encoded as text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Token usage in vendor-neutral terms.

    ``input_tokens`` counts the whole prompt, including the ``cached_tokens`` read
    from the prompt cache and the ``cache_creation_tokens`` written to it.
    ``output_tokens`` includes ``reasoning_tokens``.
    """

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Reply:
    """A complete model reply that each vendor module renders in its wire format.

    ``finish_reason`` is ``"stop"``, ``"length"`` or ``"tool_calls"``, which vendors
    map to their own terms, or a scripted value that vendors pass through unchanged.
    """

    model: str
    text: str
    tool_calls: tuple[ToolCall, ...]
    reasoning: str
    finish_reason: str
    usage: Usage


def count_words(text: str) -> int:
    """Return the number of whitespace-separated words, the fake's token count."""
    return len(text.split())


def content_text(content: Any) -> str:
    """Return the text of a message content: a string, or its text parts joined by spaces.

    Text parts are OpenAI chat ``text``, Responses ``input_text`` and
    ``output_text``, and Anthropic ``text`` blocks.
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") in _TEXT_PART_TYPES
    ]
    return " ".join(texts)


def split_pieces(text: str) -> list[str]:
    """Split text into stream pieces of one word each; joined they equal the text."""
    pieces = _PIECE_PATTERN.findall(text)
    if "".join(pieces) != text:
        # Only text made of whitespace alone has no word to carry it.
        return [text] if text else []
    return pieces


def split_fixed(text: str, size: int = 8) -> list[str]:
    """Split text into pieces of ``size`` characters, as tool argument deltas arrive."""
    return [text[start : start + size] for start in range(0, len(text), size)]


def stable_id(prefix: str, *parts: str) -> str:
    """Return an id that depends only on its parts, so test expectations can be fixed."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return prefix + digest[:24]


def compose_reply(prompt: Prompt, override: dict[str, Any] | None = None) -> Reply:
    """Build the reply for the prompt, then apply a scripted override.

    The override keys are ``text``, ``tool_calls``, ``reasoning``, ``finish_reason``
    and ``usage``. Each tool call is ``{"name": ..., "arguments": {...}}`` with an
    optional ``id``. ``usage`` may set any field of ``Usage``, and the fields it
    leaves out keep their counted values.
    """
    override = override or {}
    text = ECHO_PREFIX + prompt.last_user_text
    tool_calls = _default_tool_calls(prompt)
    reasoning = (
        REASONING_PREFIX + prompt.last_user_text if prompt.wants_reasoning else ""
    )

    if "text" in override:
        text = str(override["text"])
    if "tool_calls" in override:
        tool_calls = _scripted_tool_calls(prompt, override["tool_calls"])
    if "reasoning" in override:
        reasoning = str(override["reasoning"])
    if tool_calls and "text" not in override:
        text = ""

    finish_reason = "tool_calls" if tool_calls else "stop"
    limit = prompt.max_output_tokens
    if not isinstance(limit, int):
        limit = None
    if not tool_calls and limit is not None and count_words(text) > limit:
        text = "".join(split_pieces(text)[:limit]).rstrip()
        finish_reason = "length"
    finish_reason = str(override.get("finish_reason", finish_reason))

    usage = _count_usage(prompt, text, tool_calls, reasoning)
    usage = dataclasses.replace(usage, **override.get("usage", {}))
    return Reply(prompt.model, text, tool_calls, reasoning, finish_reason, usage)


def _default_tool_calls(prompt: Prompt) -> tuple[ToolCall, ...]:
    if not prompt.tools or not prompt.ends_with_user_text:
        return ()

    tools = {tool.name: tool for tool in prompt.tools}
    text = prompt.last_user_text
    names = [name for name in _CALL_PATTERN.findall(text) if name in tools]
    if not names:
        return ()
    if not _PARALLEL_PATTERN.search(text):
        names = names[:1]
    elif len(names) == 1:
        names = names * 2

    calls = []
    for position, name in enumerate(names):
        arguments = orjson.dumps(placeholder_arguments(tools[name].parameters))
        call_id = stable_id(prompt.tool_call_id_prefix, text, str(position), name)
        calls.append(ToolCall(call_id, name, arguments.decode()))
    return tuple(calls)


def _scripted_tool_calls(
    prompt: Prompt, scripted: list[dict[str, Any]]
) -> tuple[ToolCall, ...]:
    calls = []
    for position, call in enumerate(scripted):
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        default_id = stable_id(
            prompt.tool_call_id_prefix, prompt.last_user_text, str(position)
        )
        calls.append(ToolCall(call.get("id", default_id), call["name"], arguments))
    return tuple(calls)


def placeholder_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Return an object with a placeholder value for each required schema property."""
    properties = schema.get("properties") or {}
    arguments = {}
    for name in schema.get("required") or []:
        kind = (properties.get(name) or {}).get("type", "string")
        if isinstance(kind, list):
            kind = kind[0] if kind else "string"
        arguments[name] = _PLACEHOLDERS.get(kind, "test")
    return arguments


def _count_usage(
    prompt: Prompt, text: str, tool_calls: tuple[ToolCall, ...], reasoning: str
) -> Usage:
    reasoning_tokens = count_words(reasoning)
    output_tokens = count_words(text) + reasoning_tokens
    for call in tool_calls:
        output_tokens += count_words(call.name + " " + call.arguments)
    return Usage(
        input_tokens=prompt.input_words,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
    )
