"""Fake Zhipu GLM API: ``POST /api/paas/v4/chat/completions`` and ``/embeddings``.

Bodies are OpenAI-like. Errors are ``{"error": {"code": "<business code>",
"message": ...}}`` with an HTTP status; a missing or wrong key gets 401 with code
1002, and a scripted error's ``type`` is the business code. tool_choice other than
auto is rejected (code 1214), as GLM does. ``thinking: {"type": "enabled"}`` adds
``reasoning_content``. Streams end with a chunk that carries the finish reason and
usage, then ``[DONE]``.
"""

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider import embedding
from nexus.fakeprovider.reply import compose_reply, count_words
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)
from nexus.fakeprovider.vendors.openai import (
    chat_chunks,
    chat_completion,
    chat_prompt,
    chat_usage,
    embedding_texts,
)

logger = logging.getLogger(__name__)

PREFIX = "/api/paas/v4"


class GLMVendor(Vendor):
    """Zhipu's GLM chat completions and embeddings."""

    name: ClassVar[str] = "glm"

    def endpoints(self) -> list[Endpoint]:
        """Return the chat and embeddings routes."""
        return [
            Endpoint("POST", PREFIX + "/chat/completions", self.chat),
            Endpoint("POST", PREFIX + "/embeddings", self.embeddings),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing or unexpected bearer token with 401 and code 1002."""
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self.error_response(
                401, "1001", "Header中未收到Authentication参数，无法进行身份验证"
            )
        if expected_key is not None and key.strip() != expected_key:
            return self.error_response(
                401,
                "1002",
                "Authorization Token非法，请确认Authorization Token正确传递。",
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return GLM's error object; the type is the business code."""
        return {"error": {"code": code or error_type, "message": message}}

    async def chat(self, call: Call) -> web.StreamResponse:
        """Return a chat completion, streamed when ``stream`` is set."""
        rejection = self.reject_body(call, "model", "messages")
        if rejection is not None:
            return rejection
        body = call.body
        if body.get("tool_choice") not in (None, "auto"):
            return self.error_response(400, "1214", "tool_choice参数非法。请检查文档。")
        prompt = chat_prompt(body)
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        prompt = dataclasses.replace(prompt, wants_reasoning=thinking)
        reply = compose_reply(prompt, call.reply_override)
        completion_id = next_request_id("glm-")
        created = int(time.time())
        if not body.get("stream"):
            answer = chat_completion(reply, completion_id, created)
            if reply.reasoning:
                answer["choices"][0]["message"]["reasoning_content"] = reply.reasoning
            return self.json_response(answer)
        chunks = list(chat_chunks(reply, completion_id, created, include_usage=False))
        if reply.reasoning:
            chunks[0]["choices"][0]["delta"]["reasoning_content"] = reply.reasoning
        chunks[-1]["usage"] = chat_usage(reply)
        events = [sse_event(chunk) for chunk in chunks]
        events.append(b"data: [DONE]\n\n")
        return await self.stream(call, events)

    async def embeddings(self, call: Call) -> web.StreamResponse:
        """Return float vectors; GLM has no encoding_format parameter."""
        rejection = self.reject_body(call, "model", "input")
        if rejection is not None:
            return rejection
        body = call.body
        if "encoding_format" in body:
            return self.error_response(
                400, "1214", "encoding_format参数非法。请检查文档。"
            )
        texts = embedding_texts(body["input"])
        dimensions = body.get("dimensions", embedding.DEFAULT_DIMENSIONS)
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": embedding.embed_text(text, dimensions),
            }
            for index, text in enumerate(texts)
        ]
        tokens = sum(count_words(text) for text in texts)
        usage = {
            "prompt_tokens": tokens,
            "completion_tokens": 0,
            "total_tokens": tokens,
        }
        return self.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )
