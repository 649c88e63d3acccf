"""Shapes of the OpenAI Responses API (``POST /v1/responses``) for the fake OpenAI.

Only function tools and text output are modelled. A reply with reasoning gets a
reasoning output item with an empty summary, as the API returns when no summary is
requested.
"""

import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

from nexus.fakeprovider.reply import (
    Prompt,
    Reply,
    ToolSpec,
    content_text,
    count_words,
    split_fixed,
    split_pieces,
    stable_id,
)
from nexus.fakeprovider.vendors.base import sse_event

logger = logging.getLogger(__name__)


def prompt(body: dict[str, Any]) -> Prompt:
    """Read the reply-relevant parts of a Responses API request."""
    items = body["input"]
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    items = [item for item in items if isinstance(item, dict)]

    texts = [str(body.get("instructions") or "")]
    user_texts = []
    for item in items:
        text = _item_text(item)
        texts.append(text)
        if _is_message(item) and item.get("role") == "user" and text:
            user_texts.append(text)
    last = items[-1] if items else {}
    ends_with_user_text = bool(
        _is_message(last) and last.get("role") == "user" and _item_text(last)
    )

    tools = tuple(
        ToolSpec(tool["name"], tool.get("parameters") or {})
        for tool in body.get("tools") or []
        if tool.get("type") == "function" and "name" in tool
    )
    return Prompt(
        model=str(body["model"]),
        last_user_text=user_texts[-1] if user_texts else "",
        input_words=sum(count_words(text) for text in texts),
        ends_with_user_text=ends_with_user_text,
        tools=tools,
        wants_reasoning=bool(body.get("reasoning")),
        max_output_tokens=body.get("max_output_tokens"),
    )


def response_object(
    reply: Reply, response_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Return the finished response object."""
    status = "incomplete" if reply.finish_reason == "length" else "completed"
    return _response(reply, response_id, body, status, output_items(reply, response_id))


def output_items(reply: Reply, response_id: str) -> list[dict[str, Any]]:
    """Return the finished output items: reasoning, then text or function calls."""
    items = []
    if reply.reasoning:
        items.append(_reasoning_item(response_id))
    if reply.text or not reply.tool_calls:
        items.append(_message_item(response_id, reply.text, "completed"))
    for call in reply.tool_calls:
        items.append(
            _function_call_item(response_id, call.id, call.name, call.arguments)
        )
    return items


def stream_events(reply: Reply, response_id: str, body: dict[str, Any]) -> list[bytes]:
    """Return the server-sent events of a streamed response, each with its type name."""
    sequence = itertools.count()

    def event(data: dict[str, Any]) -> bytes:
        return sse_event({**data, "sequence_number": next(sequence)}, data["type"])

    in_progress = _response(reply, response_id, body, "in_progress", [])
    events = [
        event({"type": "response.created", "response": in_progress}),
        event({"type": "response.in_progress", "response": in_progress}),
    ]
    for output_index, item in enumerate(output_items(reply, response_id)):
        events.extend(event(data) for data in _item_events(item, output_index))
    final = response_object(reply, response_id, body)
    final_type = f"response.{final['status']}"
    events.append(event({"type": final_type, "response": final}))
    return events


def _item_events(item: dict[str, Any], output_index: int) -> Iterator[dict[str, Any]]:
    position = {"item_id": item["id"], "output_index": output_index}
    if item["type"] == "message":
        started = {**item, "status": "in_progress", "content": []}
        yield {
            "type": "response.output_item.added",
            "output_index": output_index,
            "item": started,
        }
        yield from _text_events(item["content"][0], position)
    elif item["type"] == "function_call":
        started = {**item, "status": "in_progress", "arguments": ""}
        yield {
            "type": "response.output_item.added",
            "output_index": output_index,
            "item": started,
        }
        for piece in split_fixed(item["arguments"]):
            yield {
                "type": "response.function_call_arguments.delta",
                **position,
                "delta": piece,
            }
        yield {
            "type": "response.function_call_arguments.done",
            **position,
            "arguments": item["arguments"],
        }
    else:
        yield {
            "type": "response.output_item.added",
            "output_index": output_index,
            "item": item,
        }
    yield {
        "type": "response.output_item.done",
        "output_index": output_index,
        "item": item,
    }


def _text_events(part: dict[str, Any], position: dict[str, Any]) -> Iterator[dict]:
    text_position = {**position, "content_index": 0}
    empty_part = {**part, "text": ""}
    yield {"type": "response.content_part.added", **text_position, "part": empty_part}
    for piece in split_pieces(part["text"]):
        yield {
            "type": "response.output_text.delta",
            **text_position,
            "delta": piece,
            "logprobs": [],
        }
    yield {
        "type": "response.output_text.done",
        **text_position,
        "text": part["text"],
        "logprobs": [],
    }
    yield {"type": "response.content_part.done", **text_position, "part": part}


def _response(
    reply: Reply,
    response_id: str,
    body: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
) -> dict[str, Any]:
    finished = status != "in_progress"
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": reply.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort")},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _usage(reply) if finished else None,
        "metadata": body.get("metadata") or {},
    }


def _usage(reply: Reply) -> dict[str, Any]:
    usage = reply.usage
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _message_item(response_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": stable_id("msg_", response_id),
        "status": status,
        "role": "assistant",
        "content": [part],
    }


def _function_call_item(
    response_id: str, call_id: str, name: str, arguments: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": stable_id("fc_", response_id, call_id),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def _reasoning_item(response_id: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": stable_id("rs_", response_id), "summary": []}


def _is_message(item: dict[str, Any]) -> bool:
    return item.get("type", "message") == "message" and "role" in item


def _item_text(item: dict[str, Any]) -> str:
    if item.get("type") == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else content_text(output)
    return content_text(item.get("content"))
