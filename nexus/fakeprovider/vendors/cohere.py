"""Fake Cohere API v2: ``POST /v2/chat`` (JSON or SSE) and ``POST /v2/embed``.

Requests need ``Authorization: Bearer <key>``; a missing or unexpected key gets 401
with Cohere's error body ``{"id": ..., "message": ...}``. Chat answers carry
Cohere's finish reasons (COMPLETE, MAX_TOKENS, TOOL_CALL or a scripted value) and
usage with both ``billed_units`` and ``tokens``. Streams send the documented event
sequence: message-start, content-start, content-delta..., content-end (or
tool-plan-delta and tool-call-start, tool-call-delta..., tool-call-end per call), then
message-end with the finish reason and usage. tool_choice accepts only REQUIRED and
NONE, as Cohere's does.
"""

import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider import embedding
from nexus.fakeprovider.reply import (
    Prompt,
    Reply,
    ToolSpec,
    compose_reply,
    content_text,
    count_words,
    split_fixed,
    split_pieces,
)
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)

logger = logging.getLogger(__name__)

FINISH_REASONS = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


class CohereVendor(Vendor):
    """Cohere's v2 chat and embed endpoints."""

    name: ClassVar[str] = "cohere"

    def endpoints(self) -> list[Endpoint]:
        """Return the chat and embed routes."""
        return [
            Endpoint("POST", "/v2/chat", self.chat),
            Endpoint("POST", "/v2/embed", self.embed),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing bearer token, or one that differs from the expected key."""
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self.error_response(401, "unauthorized", "no api key supplied")
        if expected_key is not None and key.strip() != expected_key:
            return self.error_response(401, "unauthorized", "invalid api token")
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return Cohere's error body, which has an id and a message only."""
        return {"id": next_request_id("err_"), "message": message}

    async def chat(self, call: Call) -> web.StreamResponse:
        """Return a chat answer, streamed when the request sets ``stream``."""
        rejection = self.reject_body(call, "model", "messages")
        if rejection is not None:
            return rejection
        body = call.body
        if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
            return self.error_response(
                400,
                "invalid_request",
                "invalid request: tool_choice must be one of REQUIRED, NONE.",
            )
        reply = compose_reply(chat_prompt(body), call.reply_override)
        answer_id = next_request_id("cohere-")
        if not body.get("stream"):
            return self.json_response(chat_answer(reply, answer_id))
        events = [
            sse_event(data, data["type"]) for data in stream_events(reply, answer_id)
        ]
        return await self.stream(call, events)

    async def embed(self, call: Call) -> web.StreamResponse:
        """Return float embeddings for ``texts``; input_type is required."""
        rejection = self.reject_body(call, "model", "texts")
        if rejection is not None:
            return rejection
        body = call.body
        if body.get("input_type") not in INPUT_TYPES:
            return self.error_response(
                400,
                "invalid_request",
                "invalid request: input_type is required for Embed v3 and higher.",
            )
        texts = [str(text) for text in body["texts"]]
        dimensions = body.get("output_dimension", embedding.DEFAULT_DIMENSIONS)
        vectors = [embedding.embed_text(text, dimensions) for text in texts]
        tokens = sum(count_words(text) for text in texts)
        return self.json_response(
            {
                "id": next_request_id("embed-"),
                "embeddings": {"float": vectors},
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": tokens},
                },
                "response_type": "embeddings_by_type",
            }
        )


def chat_prompt(body: dict[str, Any]) -> Prompt:
    """Read the reply-relevant parts of a v2 chat request."""
    messages = [message for message in body["messages"] if isinstance(message, dict)]
    texts = [content_text(message.get("content")) for message in messages]
    user_texts = [
        text
        for message, text in zip(messages, texts, strict=True)
        if message.get("role") == "user" and text
    ]
    tools = tuple(
        ToolSpec(function["name"], function.get("parameters") or {})
        for tool in body.get("tools") or []
        if isinstance(function := tool.get("function"), dict) and "name" in function
    )
    return Prompt(
        model=str(body["model"]),
        last_user_text=user_texts[-1] if user_texts else "",
        input_words=sum(count_words(text) for text in texts),
        ends_with_user_text=bool(
            messages and messages[-1].get("role") == "user" and texts[-1]
        ),
        tools=tools if body.get("tool_choice") != "NONE" else (),
        wants_reasoning=(body.get("thinking") or {}).get("type") == "enabled",
        max_output_tokens=body.get("max_tokens"),
        tool_call_id_prefix="cohere_call_",
    )


def chat_usage(reply: Reply) -> dict[str, Any]:
    """Return usage with billed units and model tokens (the fake counts them alike)."""
    usage = reply.usage
    counts = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    result: dict[str, Any] = {"billed_units": dict(counts), "tokens": dict(counts)}
    if usage.cached_tokens:
        result["cached_tokens"] = usage.cached_tokens
    return result


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in reply.tool_calls
    ]


def chat_answer(reply: Reply, answer_id: str) -> dict[str, Any]:
    """Return a non-streamed chat answer."""
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append({"type": "thinking", "thinking": reply.reasoning})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reply.tool_calls:
        message["tool_plan"] = "I will call the requested tools."
        message["tool_calls"] = _tool_calls(reply)
    return {
        "id": answer_id,
        "finish_reason": FINISH_REASONS.get(reply.finish_reason, reply.finish_reason),
        "message": message,
        "usage": chat_usage(reply),
    }


def stream_events(reply: Reply, answer_id: str) -> Iterator[dict[str, Any]]:
    """Yield the event payloads of a streamed chat answer in the documented order."""

    def message_delta(kind: str, message: dict[str, Any], **extra: Any) -> dict:
        return {"type": kind, **extra, "delta": {"message": message}}

    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
    yield {"id": answer_id, **message_delta("message-start", start)}
    index = 0
    for kind, text in (("thinking", reply.reasoning), ("text", reply.text)):
        if not text:
            continue
        yield message_delta(
            "content-start", {"content": {"type": kind, kind: ""}}, index=index
        )
        for piece in split_pieces(text):
            yield message_delta(
                "content-delta", {"content": {kind: piece}}, index=index
            )
        yield {"type": "content-end", "index": index}
        index += 1
    if reply.tool_calls:
        yield message_delta(
            "tool-plan-delta", {"tool_plan": "I will call the requested tools."}
        )
    for position, call in enumerate(reply.tool_calls):
        started = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield message_delta("tool-call-start", {"tool_calls": started}, index=position)
        for piece in split_fixed(call.arguments):
            arguments = {"function": {"arguments": piece}}
            yield message_delta(
                "tool-call-delta", {"tool_calls": arguments}, index=position
            )
        yield {"type": "tool-call-end", "index": position}
    finish_reason = FINISH_REASONS.get(reply.finish_reason, reply.finish_reason)
    yield {
        "type": "message-end",
        "delta": {"finish_reason": finish_reason, "usage": chat_usage(reply)},
    }
