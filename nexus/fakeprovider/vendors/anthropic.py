"""Fake Anthropic Messages API: ``POST /v1/messages`` and token counting.

Requests need an API key (401 ``authentication_error`` otherwise, or when it differs
from the server's expected Anthropic key) and an ``anthropic-version`` header (400
``invalid_request_error`` otherwise). The API reference names the ``x-api-key``
header, but the anthropic Python SDK 2.x sends ``api_key`` as
``Authorization: Bearer``, so either header is accepted.
"""

import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import orjson
from aiohttp import web

from nexus.fakeprovider.reply import (
    Prompt,
    Reply,
    ToolSpec,
    compose_reply,
    content_text,
    count_words,
    split_fixed,
    split_pieces,
    stable_id,
)
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)

logger = logging.getLogger(__name__)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class AnthropicVendor(Vendor):
    """The Anthropic API under ``/v1``."""

    name: ClassVar[str] = "anthropic"
    request_id_header: ClassVar[str] = "request-id"

    def endpoints(self) -> list[Endpoint]:
        """Return the Messages and token counting routes."""
        # TODO: GET /v1/models belongs to the OpenAI vendor here, so Anthropic's model
        # list is not served.
        return [
            Endpoint("POST", "/v1/messages", self.messages),
            Endpoint("POST", "/v1/messages/count_tokens", self.count_tokens),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing or wrong API key and a missing ``anthropic-version``."""
        key = headers.get("x-api-key", "").strip()
        if not key:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else ""
        if not key:
            return self.error_response(
                401, "authentication_error", "Missing x-api-key header."
            )
        if expected_key is not None and key != expected_key:
            return self.error_response(401, "authentication_error", "Invalid API key.")
        if not headers.get("anthropic-version"):
            return self.error_response(
                400, "invalid_request_error", "Missing anthropic-version header."
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return Anthropic's error object; Anthropic errors have no code."""
        return {"type": "error", "error": {"type": error_type, "message": message}}

    async def messages(self, call: Call) -> web.StreamResponse:
        """Return a Message, streamed when the request sets ``stream``."""
        rejection = self.reject_body(call, "model", "messages", "max_tokens")
        if rejection is not None:
            return rejection

        reply = compose_reply(messages_prompt(call.body), call.reply_override)
        message_id = next_request_id("msg_fake")
        if not call.body.get("stream"):
            return self.json_response(message_object(reply, message_id))
        events = [
            sse_event(data, data["type"]) for data in stream_events(reply, message_id)
        ]
        return await self.stream(call, events)

    async def count_tokens(self, call: Call) -> web.StreamResponse:
        """Return the input word count of a Messages request."""
        rejection = self.reject_body(call, "model", "messages")
        if rejection is not None:
            return rejection
        return self.json_response(
            {"input_tokens": messages_prompt(call.body).input_words}
        )


def messages_prompt(body: dict[str, Any]) -> Prompt:
    """Read the reply-relevant parts of a Messages request."""
    messages = [message for message in body["messages"] if isinstance(message, dict)]
    texts = [content_text(body.get("system"))]
    user_texts = []
    for message in messages:
        text = content_text(message.get("content"))
        texts.append(text)
        texts.extend(_tool_result_texts(message.get("content")))
        if message.get("role") == "user" and text:
            user_texts.append(text)
    ends_with_user_text = bool(
        messages
        and messages[-1].get("role") == "user"
        and content_text(messages[-1].get("content"))
    )

    tools = tuple(
        ToolSpec(tool["name"], tool.get("input_schema") or {})
        for tool in body.get("tools") or []
        if "name" in tool and "input_schema" in tool
    )
    thinking = body.get("thinking") or {}
    return Prompt(
        model=str(body["model"]),
        last_user_text=user_texts[-1] if user_texts else "",
        input_words=sum(count_words(text) for text in texts),
        ends_with_user_text=ends_with_user_text,
        tools=tools,
        wants_reasoning=thinking.get("type") in ("enabled", "adaptive"),
        max_output_tokens=body.get("max_tokens"),
        tool_call_id_prefix="toolu_",
    )


def message_usage(reply: Reply) -> dict[str, int]:
    """Return Anthropic usage, where ``input_tokens`` excludes cache reads and writes."""
    usage = reply.usage
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(uncached, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def content_blocks(reply: Reply) -> list[dict[str, Any]]:
    """Return the finished content blocks: thinking, then text or tool_use blocks."""
    blocks: list[dict[str, Any]] = []
    if reply.reasoning:
        blocks.append(
            {
                "type": "thinking",
                "thinking": reply.reasoning,
                "signature": stable_id("sig_", reply.reasoning),
            }
        )
    if reply.text or not reply.tool_calls:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": orjson.loads(call.arguments),
            }
        )
    return blocks


def message_object(reply: Reply, message_id: str) -> dict[str, Any]:
    """Return a non-streamed Message object."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content_blocks(reply),
        "stop_reason": STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
        "stop_sequence": None,
        "usage": message_usage(reply),
    }


def stream_events(reply: Reply, message_id: str) -> Iterator[dict[str, Any]]:
    """Yield the event payloads of a streamed Message, in the documented order.

    The order is message_start, ping, then per content block a content_block_start,
    its deltas and a content_block_stop, then message_delta and message_stop.
    """
    started = message_object(reply, message_id)
    started.update(content=[], stop_reason=None)
    started["usage"] = {**started["usage"], "output_tokens": 1}
    yield {"type": "message_start", "message": started}
    yield {"type": "ping"}

    for index, block in enumerate(content_blocks(reply)):
        yield from _block_events(index, block)

    stop_reason = STOP_REASONS.get(reply.finish_reason, reply.finish_reason)
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": reply.usage.output_tokens},
    }
    yield {"type": "message_stop"}


def _block_events(index: int, block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def delta(data: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": data}

    if block["type"] == "thinking":
        empty = {"type": "thinking", "thinking": "", "signature": ""}
        yield {"type": "content_block_start", "index": index, "content_block": empty}
        for piece in split_pieces(block["thinking"]):
            yield delta({"type": "thinking_delta", "thinking": piece})
        yield delta({"type": "signature_delta", "signature": block["signature"]})
    elif block["type"] == "text":
        empty = {"type": "text", "text": ""}
        yield {"type": "content_block_start", "index": index, "content_block": empty}
        for piece in split_pieces(block["text"]):
            yield delta({"type": "text_delta", "text": piece})
    else:
        empty = {**block, "input": {}}
        yield {"type": "content_block_start", "index": index, "content_block": empty}
        for piece in split_fixed(orjson.dumps(block["input"]).decode()):
            yield delta({"type": "input_json_delta", "partial_json": piece})
    yield {"type": "content_block_stop", "index": index}


def _tool_result_texts(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        content_text(block.get("content"))
        for block in content
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
