"""Translation of Bedrock Converse answers into canonical (OpenAI chat) form."""

import logging
from typing import Any

import orjson

from nexus.engine.canonical import Usage
from nexus.engine.providers.base import finish_reason_from

logger = logging.getLogger(__name__)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def usage_from_converse(usage: Any) -> Usage:
    """Read a Converse usage object; canonical input includes cache reads and writes."""
    if not isinstance(usage, dict):
        return Usage()
    cache_read = _count(usage.get("cacheReadInputTokens"))
    cache_write = _count(usage.get("cacheWriteInputTokens"))
    return Usage(
        input_tokens=_count(usage.get("inputTokens")) + cache_read + cache_write,
        output_tokens=_count(usage.get("outputTokens")),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        reported=True,
    )


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def message_from_content(
    blocks: list[Any], response_tool: str | None
) -> dict[str, Any]:
    """Return the OpenAI assistant message for Converse content blocks.

    The input of the response_format tool becomes text content. Reasoning text goes
    to reasoning_content and, with its signature, to thinking_blocks.
    """
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            tool_use = block["toolUse"]
            arguments = orjson.dumps(tool_use.get("input") or {}).decode()
            if response_tool and tool_use.get("name") == response_tool:
                texts.append(arguments)
                continue
            tool_calls.append(
                {
                    "id": str(tool_use.get("toolUseId") or ""),
                    "type": "function",
                    "function": {
                        "name": str(tool_use.get("name") or ""),
                        "arguments": arguments,
                    },
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            _add_reasoning(block["reasoningContent"], reasoning, thinking_blocks)

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


def _add_reasoning(
    content: dict[str, Any], reasoning: list[str], thinking_blocks: list
) -> None:
    text = content.get("reasoningText")
    if isinstance(text, dict):
        reasoning.append(str(text.get("text") or ""))
        thinking_blocks.append(
            {
                "type": "thinking",
                "thinking": str(text.get("text") or ""),
                "signature": str(text.get("signature") or ""),
            }
        )
    elif isinstance(content.get("redactedContent"), str):
        thinking_blocks.append(
            {"type": "redacted_thinking", "data": content["redactedContent"]}
        )


def finish_reason_for(
    stop_reason: Any, *, has_tool_calls: bool, only_response_tool: bool, truncated: bool
) -> str:
    """Map a Converse stopReason to an OpenAI finish_reason (see FINISH_REASONS)."""
    if stop_reason == "tool_use" and only_response_tool:
        # Only the response_format tool was called, so the answer is complete.
        return "stop"
    return finish_reason_from(
        FINISH_REASONS,
        stop_reason,
        provider="bedrock",
        has_tool_calls=has_tool_calls,
        truncated=truncated,
    )
