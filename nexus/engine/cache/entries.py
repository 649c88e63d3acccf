"""Cached responses: stored form, assembly from stream chunks and the poison guard."""

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from nexus.engine.canonical import ChatResult, Usage

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1
# Finish reasons of a complete response. Responses that end with length (truncated),
# content_filter (filtered or refused) or no reason (cut off) are never stored.
STORABLE_FINISH_REASONS = frozenset({"stop", "tool_calls", "function_call"})


@dataclass
class CachedResponse:
    """A complete canonical response as stored in the exact cache and semantic index."""

    entry_id: str
    body: dict[str, Any]
    usage: Usage
    created_at: float = field(default_factory=time.time)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": ENTRY_VERSION,
                "id": self.entry_id,
                "created": self.created_at,
                "body": self.body,
                "usage": dataclasses.asdict(self.usage),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CachedResponse | None":
        """Read a stored answer; return None for a malformed or older entry."""
        try:
            data = orjson.loads(raw)
            if data.get("v") != ENTRY_VERSION:
                return None
            return cls(
                entry_id=str(data["id"]),
                body=data["body"],
                usage=Usage(**data["usage"]),
                created_at=float(data["created"]),
            )
        except (
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
        ):
            logger.warning("unreadable cache entry of %s bytes ignored", len(raw))
            return None

    def result(self) -> ChatResult:
        """Return a fresh ChatResult; encoders change the body they are given."""
        body = orjson.loads(orjson.dumps(self.body))
        return ChatResult(body=body, usage=dataclasses.replace(self.usage))


def rejection_reason(result: ChatResult) -> str | None:
    """Return why the answer must not be cached (error, refusal, truncation), or None."""
    choices = result.body.get("choices")
    if not isinstance(choices, list) or not choices:
        return "no_choices"
    for choice in choices:
        if not isinstance(choice, dict):
            return "malformed"
        reason = choice.get("finish_reason")
        if reason not in STORABLE_FINISH_REASONS:
            return f"finish_reason_{reason or 'missing'}"
        message = choice.get("message") or {}
        if message.get("refusal"):
            return "refusal"
        if not message.get("content") and not message.get("tool_calls"):
            return "empty"
    return None


def assemble(chunks: list[dict[str, Any]], usage: Usage) -> ChatResult:
    """Merge canonical stream chunks into one chat.completion answer.

    String delta fields are concatenated, list fields extended, tool calls merged by
    their index; the last finish reason and choice-level extras win.
    """
    body: dict[str, Any] = {"object": "chat.completion"}
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for name in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(name) is not None and name not in body:
                body[name] = chunk[name]
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            merged = choices.setdefault(
                index,
                {
                    "index": index,
                    "message": {"role": "assistant"},
                    "finish_reason": None,
                },
            )
            _merge_choice(merged, choice)
    body["choices"] = [choices[index] for index in sorted(choices)]
    for choice in body["choices"]:
        calls = choice["message"].pop("_tool_calls", None)
        if calls:
            choice["message"]["tool_calls"] = [calls[i] for i in sorted(calls)]
        choice["message"].setdefault("content", None)
    body["usage"] = usage.to_openai()
    return ChatResult(body=body, usage=dataclasses.replace(usage))


def _merge_choice(merged: dict[str, Any], choice: dict[str, Any]) -> None:
    message = merged["message"]
    for name, value in (choice.get("delta") or {}).items():
        if name == "tool_calls":
            _merge_tool_calls(message.setdefault("_tool_calls", {}), value or [])
        elif isinstance(value, str) and name != "role":
            message[name] = (message.get(name) or "") + value
        elif isinstance(value, list):
            message.setdefault(name, []).extend(value)
        elif value is not None:
            message[name] = value
    for name, value in choice.items():
        if name in ("index", "delta"):
            continue
        if name == "logprobs" and isinstance(value, dict):
            target = merged.setdefault("logprobs", {"content": []})
            target["content"].extend(value.get("content") or [])
        elif value is not None:
            merged[name] = value


def _merge_tool_calls(calls: dict[int, dict[str, Any]], deltas: list[Any]) -> None:
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        call = calls.setdefault(
            delta.get("index", len(calls)),
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if delta.get("id"):
            call["id"] = delta["id"]
        if delta.get("type"):
            call["type"] = delta["type"]
        function = delta.get("function") or {}
        if function.get("name"):
            call["function"]["name"] += function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]
