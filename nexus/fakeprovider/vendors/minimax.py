"""Fake MiniMax chat completion v2: ``POST /v1/text/chatcompletion_v2``.

The body is OpenAI-like. Every answer carries ``base_resp``; failures, including a
missing or wrong API key (status_code 1004), are answered with HTTP 200 and a
non-zero ``base_resp.status_code``, as MiniMax does. A scripted error's ``type`` is
the numeric status_code (``{"error": {"type": "1002", ...}, "status": 200}``).

tool_choice accepts only none and auto, and temperature must be in (0, 1]. Models
whose name starts with ``MiniMax-M`` reason, and their answers carry
``reasoning_content``. A stream's last chunk repeats the whole message under
``message`` next to usage and base_resp, and the stream ends without ``[DONE]``.
"""

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider.reply import compose_reply
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)
from nexus.fakeprovider.vendors.openai import chat_chunks, chat_completion, chat_prompt

logger = logging.getLogger(__name__)

BASE_RESP_OK = {"status_code": 0, "status_msg": "success"}


class MiniMaxVendor(Vendor):
    """MiniMax's chat completion v2 endpoint."""

    name: ClassVar[str] = "minimax"
    request_id_header: ClassVar[str] = "Trace-Id"

    def endpoints(self) -> list[Endpoint]:
        """Return the chat completion v2 route."""
        return [Endpoint("POST", "/v1/text/chatcompletion_v2", self.chat)]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Answer a missing or wrong key with HTTP 200 and status_code 1004."""
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self.error_response(
                200,
                "1004",
                "login fail: Please carry the API secret key in the "
                "'Authorization' field of the request header",
            )
        if expected_key is not None and key.strip() != expected_key:
            return self.error_response(200, "1004", "login fail: invalid api key")
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return MiniMax's base_resp envelope; a numeric type is the status_code."""
        status_code = int(error_type) if error_type.isdigit() else 1000
        return {
            "id": "",
            "choices": None,
            "base_resp": {"status_code": status_code, "status_msg": message},
        }

    async def chat(self, call: Call) -> web.StreamResponse:
        """Return a chat completion with base_resp, streamed when ``stream`` is set."""
        body = call.body
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            return self.error_response(
                200, "2013", "invalid params, missing model or messages"
            )
        problem = _params_problem(body)
        if problem:
            return self.error_response(200, "2013", f"invalid params, {problem}")

        prompt = chat_prompt(body)
        if str(body["model"]).startswith("MiniMax-M"):
            prompt = dataclasses.replace(prompt, wants_reasoning=True)
        reply = compose_reply(prompt, call.reply_override)
        completion_id = next_request_id("minimax-")
        created = int(time.time())
        if not body.get("stream"):
            answer = chat_completion(reply, completion_id, created)
            answer["base_resp"] = BASE_RESP_OK
            answer.update(input_sensitive=False, output_sensitive=False)
            _move_reasoning(answer["choices"][0]["message"], reply.reasoning)
            return self.json_response(answer)

        chunks = list(chat_chunks(reply, completion_id, created, include_usage=False))
        if reply.reasoning:
            first = chunks[0]["choices"][0]["delta"]
            first["reasoning_content"] = reply.reasoning
        final = chunks[-1]
        whole = chat_completion(reply, completion_id, created)
        final["choices"][0]["message"] = whole["choices"][0]["message"]
        final.update(usage=whole["usage"], base_resp=BASE_RESP_OK)
        return await self.stream(call, [sse_event(chunk) for chunk in chunks])


def _params_problem(body: dict[str, Any]) -> str | None:
    if body.get("tool_choice") not in (None, "none", "auto"):
        return "tool_choice must be none or auto"
    temperature = body.get("temperature")
    if temperature is not None and not 0 < temperature <= 1:
        return "temperature must be in (0, 1]"
    return None


def _move_reasoning(message: dict[str, Any], reasoning: str) -> None:
    if reasoning:
        message["reasoning_content"] = reasoning
