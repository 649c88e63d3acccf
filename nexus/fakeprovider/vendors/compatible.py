"""Fake OpenAI-compatible vendors whose wire behaviour differs from OpenAI's.

Each vendor serves the OpenAI chat completions and embeddings shapes under its own
prefix (``/mistral/v1``, ``/groq/openai/v1``, ``/perplexity``, ``/deepseek``) and
plays the documented differences that matter to a gateway:

- Mistral rejects every body field its schema does not define with HTTP 422
  (``extra_forbidden``), message ``name`` included, and puts usage in the last
  stream chunk unasked. Reasoning arrives as ``thinking`` content chunks.
- Groq rejects ``logprobs``, ``top_logprobs``, ``logit_bias``, message ``name``
  and ``n`` other than 1 with HTTP 400, reports stream usage in the last chunk's ``x_groq.usage``,
  and returns reasoning in a ``reasoning`` field.
- Perplexity rejects ``tools`` with HTTP 400, accepts only ``json_schema`` structured output
  and puts usage in the last stream chunk.
- DeepSeek rejects ``logprobs`` with HTTP 400 on deepseek-reasoner and returns reasoning in
  ``reasoning_content``.

Requests need ``Authorization: Bearer <key>``, as the OpenAI fake checks it.
"""

import logging
import time
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider.reply import Reply, compose_reply, split_pieces
from nexus.fakeprovider.vendors.base import Call, Endpoint, next_request_id, sse_event
from nexus.fakeprovider.vendors.openai import (
    OpenAIVendor,
    chat_chunks,
    chat_completion,
    chat_prompt,
    chat_usage,
)

logger = logging.getLogger(__name__)

MISTRAL_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
        "reasoning_effort",
    }
)
MISTRAL_MESSAGE_FIELDS = frozenset(
    {"role", "content", "tool_calls", "tool_call_id", "prefix"}
)


class CompatibleFakeVendor(OpenAIVendor):
    """The OpenAI fake under a prefix, with one vendor's rejections and stream usage.

    ``usage_mode`` is ``"asked"`` (only with stream_options.include_usage),
    ``"last_chunk"`` (always, in the chunk with the finish reason) or ``"x_groq"``.
    ``reasoning_field`` names the delta and message field of the reasoning text, or
    ``"thinking_chunks"`` for Mistral's content chunks.
    """

    prefix: ClassVar[str] = ""
    usage_mode: ClassVar[str] = "asked"
    reasoning_field: ClassVar[str] = "reasoning_content"

    def endpoints(self) -> list[Endpoint]:
        """Return the chat and embeddings routes under the vendor's prefix."""
        return [
            Endpoint("POST", self.prefix + "/chat/completions", self.chat_completions),
            Endpoint("POST", self.prefix + "/embeddings", self.embeddings),
        ]

    def problem(self, body: dict[str, Any]) -> web.Response | None:
        """Return the vendor's error for a request it rejects, or None."""
        return None

    async def chat_completions(self, call: Call) -> web.StreamResponse:
        """Return a chat completion in the vendor's dialect, streamed when asked."""
        rejection = self.reject_body(call, "model", "messages")
        if rejection is not None:
            return rejection
        body = call.body
        rejection = self.problem(body)
        if rejection is not None:
            return rejection

        reply = compose_reply(chat_prompt(body), call.reply_override)
        completion_id = next_request_id("chatcmpl-fake")
        created = int(time.time())
        if not body.get("stream"):
            return self.json_response(self.completion(reply, completion_id, created))

        asked = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = list(chat_chunks(reply, completion_id, created, asked))
        if self.usage_mode != "asked":
            self.attach_usage(chunks, reply)
        chunks[1:1] = self.reasoning_chunks(reply, chunks[0])
        events = [sse_event(chunk) for chunk in chunks]
        events.append(b"data: [DONE]\n\n")
        return await self.stream(call, events)

    def completion(self, reply: Reply, completion_id: str, created: int) -> dict:
        """Return the complete chat completion with the vendor's reasoning field."""
        data = chat_completion(reply, completion_id, created)
        if reply.reasoning:
            message = data["choices"][0]["message"]
            if self.reasoning_field == "thinking_chunks":
                message["content"] = [
                    _thinking_chunk(reply.reasoning),
                    {"type": "text", "text": message["content"] or ""},
                ]
            else:
                message[self.reasoning_field] = reply.reasoning
        if self.usage_mode == "x_groq":
            data["x_groq"] = {"id": completion_id, "usage": data.pop("usage")}
        return data

    def attach_usage(self, chunks: list[dict[str, Any]], reply: Reply) -> None:
        """Put the usage on the chunk with the finish reason, as the vendor does."""
        last = next(c for c in reversed(chunks) if c["choices"])
        if self.usage_mode == "x_groq":
            last["x_groq"] = {"id": last["id"], "usage": chat_usage(reply)}
        else:
            last["usage"] = chat_usage(reply)

    def reasoning_chunks(
        self, reply: Reply, first: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Return the chunks that stream the reasoning text before the reply text."""
        chunks = []
        for piece in split_pieces(reply.reasoning):
            if self.reasoning_field == "thinking_chunks":
                delta: dict[str, Any] = {"content": [_thinking_chunk(piece)]}
            else:
                delta = {self.reasoning_field: piece}
            choice = {**first["choices"][0], "delta": delta}
            chunks.append({**first, "choices": [choice]})
        return chunks


class MistralVendor(CompatibleFakeVendor):
    """Mistral's chat API under ``/mistral/v1``."""

    name: ClassVar[str] = "mistral"
    prefix: ClassVar[str] = "/mistral/v1"
    usage_mode: ClassVar[str] = "last_chunk"
    reasoning_field: ClassVar[str] = "thinking_chunks"

    def problem(self, body: dict[str, Any]) -> web.Response | None:
        """Reject fields outside Mistral's schema with 422, as its validation does."""
        extra = [["body", name] for name in sorted(set(body) - MISTRAL_FIELDS)]
        for index, message in enumerate(body["messages"]):
            for name in sorted(set(message) - MISTRAL_MESSAGE_FIELDS):
                extra.append(["body", "messages", index, name])
        if not extra:
            return None
        detail = [
            {
                "type": "extra_forbidden",
                "loc": loc,
                "msg": "Extra inputs are not permitted",
            }
            for loc in extra
        ]
        error = {
            "object": "error",
            "message": {"detail": detail},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        return self.json_response(error, status=422)


class GroqVendor(CompatibleFakeVendor):
    """Groq's OpenAI-compatible API under ``/groq/openai/v1``."""

    name: ClassVar[str] = "groq"
    prefix: ClassVar[str] = "/groq/openai/v1"
    usage_mode: ClassVar[str] = "x_groq"
    reasoning_field: ClassVar[str] = "reasoning"

    def problem(self, body: dict[str, Any]) -> web.Response | None:
        """Answer 400 to the fields Groq does not support."""
        for name in ("logprobs", "logit_bias", "top_logprobs"):
            if name in body:
                return self._bad_request(f"'{name}' : property '{name}' is unsupported")
        if body.get("n", 1) != 1:
            return self._bad_request("'n' : number must be at most 1")
        if any("name" in message for message in body["messages"]):
            return self._bad_request("'messages.name' : property 'name' is unsupported")
        return None

    def _bad_request(self, message: str) -> web.Response:
        return self.error_response(400, "invalid_request_error", message)


class PerplexityVendor(CompatibleFakeVendor):
    """Perplexity's Sonar API under ``/perplexity``."""

    name: ClassVar[str] = "perplexity"
    prefix: ClassVar[str] = "/perplexity"
    usage_mode: ClassVar[str] = "last_chunk"

    def problem(self, body: dict[str, Any]) -> web.Response | None:
        """Answer 400 to tools and to structured output other than JSON Schema."""
        if "tools" in body:
            return self.error_response(
                400, "invalid_request_error", "Tool calling is not supported."
            )
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind not in ("text", "json_schema"):
            return self.error_response(
                400, "invalid_request_error", f"Unsupported response_format {kind}."
            )
        return None


class DeepSeekVendor(CompatibleFakeVendor):
    """DeepSeek's API under ``/deepseek``."""

    name: ClassVar[str] = "deepseek"
    prefix: ClassVar[str] = "/deepseek"

    def problem(self, body: dict[str, Any]) -> web.Response | None:
        """Answer 400 to logprobs on deepseek-reasoner."""
        reasoner = str(body.get("model", "")).startswith("deepseek-reasoner")
        if reasoner and ("logprobs" in body or "top_logprobs" in body):
            return self.error_response(
                400,
                "invalid_request_error",
                "deepseek-reasoner does not support logprobs.",
            )
        return None


def _thinking_chunk(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}


COMPATIBLE_VENDOR_CLASSES: tuple[type[CompatibleFakeVendor], ...] = (
    MistralVendor,
    GroqVendor,
    PerplexityVendor,
    DeepSeekVendor,
)
