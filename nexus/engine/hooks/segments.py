"""Turn canonical requests and answers into text segments, and write redactions back.

Segments cover system prompts, message text, tool call arguments and tool results
of a chat request, the strings of an embeddings input, and the text, reasoning and
tool call arguments of an answer. Images, files and token-id inputs carry no text
and are not segments.
"""

from collections.abc import Sequence
from typing import Any

from nexus.engine.canonical import ChatRequest, ChatResult, EmbeddingsRequest
from nexus.engine.hooks.base import Redaction, Segment

_MESSAGE_KINDS = {
    "system": "system",
    "developer": "system",
    "user": "message",
    "assistant": "message",
    "tool": "tool_result",
    "function": "tool_result",
}


def request_segments(request: ChatRequest | EmbeddingsRequest) -> list[Segment]:
    """Return the text segments of a canonical chat or embeddings request."""
    if isinstance(request, EmbeddingsRequest):
        return embeddings_segments(request)
    segments: list[Segment] = []
    for index, message in enumerate(request.messages):
        role = str(message.get("role", ""))
        kind = _MESSAGE_KINDS.get(role, "message")
        segments.extend(_content_segments(message.get("content"), kind, role, index))
        for call_index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") if isinstance(call, dict) else None
            arguments = (
                function.get("arguments") if isinstance(function, dict) else None
            )
            if isinstance(arguments, str) and arguments:
                path = (
                    "messages",
                    index,
                    "tool_calls",
                    call_index,
                    "function",
                    "arguments",
                )
                segments.append(Segment("tool_arguments", arguments, role, path))
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            path = ("messages", index, "function_call", "arguments")
            segments.append(Segment("tool_arguments", legacy["arguments"], role, path))
    return segments


def _content_segments(content: Any, kind: str, role: str, index: int) -> list[Segment]:
    if isinstance(content, str):
        return (
            [Segment(kind, content, role, ("messages", index, "content"))]
            if content
            else []
        )
    if not isinstance(content, list):
        return []
    segments = []
    for part_index, part in enumerate(content):
        if (
            isinstance(part, dict)
            and isinstance(part.get("text"), str)
            and part["text"]
        ):
            path = ("messages", index, "content", part_index, "text")
            segments.append(Segment(kind, part["text"], role, path))
    return segments


def embeddings_segments(request: EmbeddingsRequest) -> list[Segment]:
    return [
        Segment("input", item, "user", ("input", index))
        for index, item in enumerate(request.inputs)
        if isinstance(item, str) and item
    ]


def result_segments(result: ChatResult) -> list[Segment]:
    """Return the text segments of a complete canonical answer."""
    segments = []
    for choice_index, choice in enumerate(result.body.get("choices") or []):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        base = ("choices", choice_index, "message")
        if isinstance(message.get("content"), str) and message["content"]:
            segments.append(
                Segment("output", message["content"], "assistant", (*base, "content"))
            )
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            segments.append(
                Segment(
                    "reasoning", reasoning, "assistant", (*base, "reasoning_content")
                )
            )
        for call_index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") if isinstance(call, dict) else None
            arguments = (
                function.get("arguments") if isinstance(function, dict) else None
            )
            if isinstance(arguments, str) and arguments:
                path = (*base, "tool_calls", call_index, "function", "arguments")
                segments.append(Segment("tool_arguments", arguments, "assistant", path))
    return segments


def apply_redactions(text: str, redactions: Sequence[Redaction]) -> str:
    """Return text with the redactions applied; overlapping ones merge into the first."""
    pieces = []
    position = 0
    for redaction in sorted(redactions, key=lambda item: (item.start, -item.end)):
        if redaction.end <= position:
            continue
        start = max(redaction.start, position)
        pieces.append(text[position:start])
        if start == redaction.start:
            pieces.append(redaction.replacement)
        position = redaction.end
    pieces.append(text[position:])
    return "".join(pieces)


def write_back(
    request_or_result: Any, segments: Sequence[Segment], texts: Sequence[str]
) -> bool:
    """Store changed texts at their segment paths; return whether anything changed."""
    changed = False
    for segment, text in zip(segments, texts, strict=True):
        if text == segment.text:
            continue
        changed = True
        if isinstance(request_or_result, EmbeddingsRequest):
            _write_embeddings_input(request_or_result, segment.path[1], text)
        else:
            _set(request_or_result.body, segment.path, text)
    return changed


def _write_embeddings_input(request: EmbeddingsRequest, index: int, text: str) -> None:
    request.inputs[index] = text
    if isinstance(request.body.get("input"), list):
        request.body["input"][index] = text
    else:
        request.body["input"] = text


def _set(body: Any, path: tuple[Any, ...], value: str) -> None:
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
