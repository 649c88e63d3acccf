"""OpenAI chat completions and embeddings as the caller's wire format."""

from typing import Any

import orjson

from nexus.engine.canonical import (
    ChatRequest,
    ChatResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    validate_chat_body,
    validate_embeddings_body,
)
from nexus.engine.errors import NexusError
from nexus.engine.ingress.base import Ingress, StreamEncoder
from nexus.engine.providers.openai import encode_vector_base64
from nexus.engine.sse import encode_event


class OpenAIStreamEncoder(StreamEncoder):
    """Write canonical chunks as OpenAI SSE, honouring the caller's include_usage."""

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self.include_usage = request.include_usage

    def encode(self, chunk: dict[str, Any]) -> bytes:
        if not chunk.get("choices"):
            # The usage-only chunk (choices == []) goes only to callers who asked.
            if not (self.include_usage and chunk.get("usage")):
                return b""
        elif not self.include_usage and "usage" in chunk:
            chunk = {name: value for name, value in chunk.items() if name != "usage"}
        chunk["model"] = self.request.model
        return encode_event(orjson.dumps(chunk))

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, error: NexusError) -> bytes:
        return encode_event(orjson.dumps(openai_error_body(error)))


class OpenAIIngress(Ingress):
    format = "openai"

    def decode_chat(self, body: Any) -> ChatRequest:
        return validate_chat_body(body)

    def encode_chat(self, result: ChatResult, request: ChatRequest) -> dict[str, Any]:
        body = result.body
        body["model"] = request.model
        body.setdefault("object", "chat.completion")
        return body

    def chat_stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        return OpenAIStreamEncoder(request)

    def error_body(self, error: NexusError) -> dict[str, Any]:
        return openai_error_body(error)

    def model_object(self, name: str) -> dict[str, Any]:
        """Return OpenAI's model object for a public model name."""
        # The gateway keeps no creation time of models, so every model shows 0.
        return {"id": name, "object": "model", "created": 0, "owned_by": "nexus"}

    def model_list(self, names: list[str]) -> dict[str, Any]:
        """Return OpenAI's model list."""
        return {"object": "list", "data": [self.model_object(name) for name in names]}

    def decode_embeddings(self, body: Any) -> EmbeddingsRequest:
        return validate_embeddings_body(body)

    def encode_embeddings(
        self, result: EmbeddingsResult, request: EmbeddingsRequest
    ) -> dict[str, Any]:
        as_base64 = request.encoding_format == "base64"
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": encode_vector_base64(vector) if as_base64 else vector,
            }
            for index, vector in enumerate(result.vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": request.model,
            "usage": {
                "prompt_tokens": result.usage.input_tokens,
                "total_tokens": result.usage.input_tokens,
            },
        }


def openai_error_body(error: NexusError) -> dict[str, Any]:
    """Return the OpenAI error object for error."""
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }
