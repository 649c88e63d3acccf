"""The base of every ingress wire format the gateway accepts."""

from typing import Any, ClassVar

from nexus.engine.canonical import ChatRequest, ChatResult
from nexus.engine.errors import NexusError


class StreamEncoder:
    """Turn canonical chunks into the bytes the caller's SDK expects."""

    def encode(self, chunk: dict[str, Any]) -> bytes:
        """Return the bytes for one canonical chunk (may be empty)."""
        raise NotImplementedError

    def finish(self) -> bytes:
        """Return the bytes that end a complete stream."""
        raise NotImplementedError

    def error(self, error: NexusError) -> bytes:
        """Return an in-stream error event that ends a failed stream."""
        raise NotImplementedError


class Ingress:
    """One wire format callers speak: decoding requests, encoding answers and errors."""

    format: ClassVar[str] = ""

    def decode_chat(self, body: Any) -> ChatRequest:
        raise NotImplementedError

    def encode_chat(self, result: ChatResult, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def chat_stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        raise NotImplementedError

    def error_body(self, error: NexusError) -> dict[str, Any]:
        raise NotImplementedError

    def model_object(self, name: str) -> dict[str, Any]:
        """Return the model object of this format for a public model name."""
        raise NotImplementedError

    def model_list(self, names: list[str]) -> dict[str, Any]:
        """Return the model list of this format for public model names."""
        raise NotImplementedError
