"""Fake OpenAI API: chat completions, embeddings, models and the Responses API.

Requests need ``Authorization: Bearer <key>``. When the server has an expected OpenAI
key, any other key is rejected with OpenAI's ``invalid_api_key`` error.
"""

import logging
import time
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
from nexus.fakeprovider.vendors import openai_responses
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)

logger = logging.getLogger(__name__)

MODEL_IDS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small")


class OpenAIVendor(Vendor):
    """The OpenAI API under ``/v1``."""

    name: ClassVar[str] = "openai"

    def endpoints(self) -> list[Endpoint]:
        """Return the chat, embeddings, models and Responses routes."""
        return [
            Endpoint("POST", "/v1/chat/completions", self.chat_completions),
            Endpoint("POST", "/v1/embeddings", self.embeddings),
            Endpoint("GET", "/v1/models", self.list_models),
            Endpoint("GET", "/v1/models/{model}", self.retrieve_model),
            Endpoint("POST", "/v1/responses", self.responses),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing bearer token, or one that differs from the expected key."""
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self.error_response(
                401,
                "invalid_request_error",
                "Missing API key: send it in the Authorization header as a Bearer "
                "token.",
            )
        if expected_key is not None and key.strip() != expected_key:
            return self.error_response(
                401,
                "invalid_request_error",
                "Incorrect API key.",
                code="invalid_api_key",
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return OpenAI's error object."""
        return {
            "error": {
                "message": message,
                "type": error_type,
                "param": None,
                "code": code,
            }
        }

    async def chat_completions(self, call: Call) -> web.StreamResponse:
        """Return a chat completion, streamed when the request sets ``stream``."""
        rejection = self.reject_body(call, "model", "messages")
        if rejection is not None:
            return rejection

        body = call.body
        # TODO: n > 1 is ignored, so every completion has exactly one choice.
        reply = compose_reply(chat_prompt(body), call.reply_override)
        completion_id = next_request_id("chatcmpl-fake")
        created = int(time.time())
        if not body.get("stream"):
            return self.json_response(chat_completion(reply, completion_id, created))

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = chat_chunks(reply, completion_id, created, include_usage)
        events = [sse_event(chunk) for chunk in chunks]
        events.append(b"data: [DONE]\n\n")
        return await self.stream(call, events)

    async def embeddings(self, call: Call) -> web.StreamResponse:
        """Return one deterministic vector per input, as floats or base64."""
        rejection = self.reject_body(call, "model", "input")
        if rejection is not None:
            return rejection

        body = call.body
        texts = embedding_texts(body["input"])
        dimensions = body.get("dimensions", embedding.DEFAULT_DIMENSIONS)
        encoding_format = body.get("encoding_format", "float")
        problem = embedding_options_problem(texts, dimensions, encoding_format)
        if problem is not None:
            return self.error_response(400, "invalid_request_error", problem)

        data = []
        for index, text in enumerate(texts):
            vector: Any = embedding.embed_text(text, dimensions)
            if encoding_format == "base64":
                vector = embedding.encode_base64(vector)
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_words(text) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return self.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    async def list_models(self, call: Call) -> web.StreamResponse:
        """List a fixed set of model ids; every other id is accepted too."""
        models = [model_object(model_id) for model_id in MODEL_IDS]
        return self.json_response({"object": "list", "data": models})

    async def retrieve_model(self, call: Call) -> web.StreamResponse:
        """Describe any model id."""
        return self.json_response(model_object(call.request.match_info["model"]))

    async def responses(self, call: Call) -> web.StreamResponse:
        """Return a Responses API response, streamed when the request sets ``stream``."""
        rejection = self.reject_body(call, "model", "input")
        if rejection is not None:
            return rejection

        body = call.body
        reply = compose_reply(openai_responses.prompt(body), call.reply_override)
        response_id = next_request_id("resp_fake")
        if not body.get("stream"):
            return self.json_response(
                openai_responses.response_object(reply, response_id, body)
            )
        events = openai_responses.stream_events(reply, response_id, body)
        return await self.stream(call, events)


def chat_prompt(body: dict[str, Any]) -> Prompt:
    """Read the reply-relevant parts of a chat completion request."""
    messages = [message for message in body["messages"] if isinstance(message, dict)]
    texts = [content_text(message.get("content")) for message in messages]
    user_texts = [
        text
        for message, text in zip(messages, texts, strict=True)
        if message.get("role") == "user" and text
    ]
    ends_with_user_text = bool(
        messages and messages[-1].get("role") == "user" and texts[-1]
    )

    tools = []
    for tool in body.get("tools") or []:
        function = tool.get("function") or {}
        if tool.get("type") == "function" and "name" in function:
            tools.append(ToolSpec(function["name"], function.get("parameters") or {}))

    return Prompt(
        model=str(body["model"]),
        last_user_text=user_texts[-1] if user_texts else "",
        input_words=sum(count_words(text) for text in texts),
        ends_with_user_text=ends_with_user_text,
        tools=tuple(tools),
        wants_reasoning=body.get("reasoning_effort") is not None,
        max_output_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
    )


def chat_usage(reply: Reply) -> dict[str, Any]:
    """Return the chat completion usage object."""
    usage = reply.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(reply: Reply, completion_id: str, created: int) -> dict[str, Any]:
    """Return a non-streamed chat completion object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": reply.finish_reason,
    }
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": reply.model,
        "choices": [choice],
        "usage": chat_usage(reply),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def chat_chunks(
    reply: Reply, completion_id: str, created: int, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """Yield the chat completion chunks of a streamed reply.

    Text arrives one word per chunk. Each tool call starts with a delta that carries
    its ``index``, ``id`` and name, followed by argument deltas with the ``index``
    only. With ``include_usage``, every chunk has ``"usage": null`` and a last chunk
    with empty ``choices`` carries the usage.
    """

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
        }
        if include_usage:
            data["usage"] = None
        return data

    first_content = "" if reply.text or not reply.tool_calls else None
    yield chunk({"role": "assistant", "content": first_content, "refusal": None})
    for piece in split_pieces(reply.text):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        start = {"name": call.name, "arguments": ""}
        start_delta = {"index": index, "id": call.id, "type": "function"}
        yield chunk({"tool_calls": [{**start_delta, "function": start}]})
        for piece in split_fixed(call.arguments):
            yield chunk(
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            )
    yield chunk({}, reply.finish_reason)

    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = chat_usage(reply)
        yield final


def embedding_texts(value: Any) -> list[str]:
    """Turn an embeddings ``input`` (text, texts, token ids or lists of them) into texts."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return []
    if all(isinstance(item, int) for item in value):
        return [" ".join(str(token) for token in value)]
    texts = []
    for item in value:
        if isinstance(item, list):
            texts.append(" ".join(str(token) for token in item))
        else:
            texts.append(str(item))
    return texts


def embedding_options_problem(
    texts: list[str], dimensions: Any, encoding_format: Any
) -> str | None:
    """Return the error message for invalid embeddings options, or None."""
    if not texts:
        return "input: must not be empty."
    if (
        not isinstance(dimensions, int)
        or not 1 <= dimensions <= embedding.MAX_DIMENSIONS
    ):
        return (
            f"dimensions: invalid value {dimensions!r}, expected 1 to "
            f"{embedding.MAX_DIMENSIONS}."
        )
    if encoding_format not in ("float", "base64"):
        return (
            f"encoding_format: invalid value {encoding_format!r}, expected 'float' "
            "or 'base64'."
        )
    return None


def model_object(model_id: str) -> dict[str, Any]:
    """Return a model object for the id."""
    return {
        "id": model_id,
        "object": "model",
        "created": 1700000000,
        "owned_by": "fake",
    }
