"""MiniMax chat completion v2 (`{base_url}/text/chatcompletion_v2`), OpenAI-like.

base_url defaults to `https://api.minimax.io/v1`; the credential is the API key,
sent as a Bearer token. MiniMax reports most failures with HTTP 200 and a
`base_resp` whose status_code is not 0, so every response and every stream chunk is
checked for it and the code is mapped to an HTTP status (ERROR_CODES).

Rewrites from OpenAI: tool_choice required or named is sent as auto (named offers
only that tool), temperature is kept within MiniMax's (0, 1], and response_format
json_object, which MiniMax lacks, becomes a system instruction. reasoning_details
(sent when `reasoning_split` is on) is returned as reasoning_content.
"""

import logging
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, EmbeddingsRequest, Usage
from nexus.engine.errors import ProviderStatusError
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ProviderAdapter, StreamDecoder
from nexus.engine.providers.openai import OpenAIAdapter
from nexus.engine.providers.openai_dialect import (
    CANONICAL_FINISH_REASONS,
    DialectStreamDecoder,
    emulate_tool_choice,
    map_finish_reasons,
)

logger = logging.getLogger(__name__)

# base_resp.status_code to (HTTP status, OpenAI error type), from MiniMax's error
# code reference. Codes not listed become 500.
ERROR_CODES = {
    1000: (500, "api_error"),
    1001: (504, "api_error"),
    1002: (429, "rate_limit_error"),
    1004: (401, "authentication_error"),
    1008: (402, "insufficient_quota"),
    1024: (500, "api_error"),
    1026: (400, "invalid_request_error"),
    1027: (400, "invalid_request_error"),
    1033: (500, "api_error"),
    1039: (429, "rate_limit_error"),
    1041: (429, "rate_limit_error"),
    1042: (400, "invalid_request_error"),
    2013: (400, "invalid_request_error"),
    2049: (401, "authentication_error"),
    2056: (429, "rate_limit_error"),
}
# The code for output that MiniMax blocked as sensitive.
OUTPUT_SENSITIVE = 1027
MIN_TEMPERATURE = 0.01
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


class MiniMaxAdapter(OpenAIAdapter):
    """MiniMax's chat completion v2 API."""

    name = "minimax"
    native_format = "minimax"
    default_base_url = "https://api.minimax.io/v1"
    supports_embeddings = False
    # MiniMax puts usage in the last chunk by itself.
    accepts_stream_options = False

    def chat_url(self, upstream_model: str) -> str:
        return f"{self.base_url}/text/chatcompletion_v2"

    def rewrite_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Fit tool_choice, temperature and response_format to MiniMax."""
        emulate_tool_choice(body)
        # The vendor streams usage unasked and does not document stream_options.
        body.pop("stream_options", None)
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)):
            body["temperature"] = min(max(float(temperature), MIN_TEMPERATURE), 1.0)
        response_format = body.get("response_format")
        if (
            isinstance(response_format, dict)
            and response_format.get("type") == "json_object"
        ):
            body.pop("response_format")
            instruction = {"role": "system", "content": JSON_INSTRUCTION}
            body["messages"] = [instruction, *body["messages"]]
        return body

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        return ProviderAdapter.build_embeddings_request(self, request, upstream_model)

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Raise the base_resp error, else read the OpenAI-like response."""
        parsed = _load(body)
        blocked = _check_base_resp(self.connection.name, parsed)
        if blocked:
            return _blocked_result(request)
        result = super().parse_chat_response(body, request)
        map_finish_reasons(
            result.body["choices"], CANONICAL_FINISH_REASONS, {}, self.connection.name
        )
        for choice in result.body["choices"]:
            _reasoning_details_to_content(choice.get("message"))
        return result

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return MiniMaxStreamDecoder(self.connection.name)

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read base_resp when present, else the generic error shape."""
        base_resp = _load(body).get("base_resp")
        if isinstance(base_resp, dict) and base_resp.get("status_code"):
            return _base_resp_error(self.connection.name, base_resp)
        return super().parse_error(status, body)


class MiniMaxStreamDecoder(DialectStreamDecoder):
    """Decode a MiniMax stream; a chunk with a base_resp error ends it."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, CANONICAL_FINISH_REASONS)

    def normalize(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if _check_base_resp(self.provider, chunk):
            self.saw_finish_reason = True
            return [_finish_chunk(chunk, "content_filter")]
        for choice in chunk.get("choices") or []:
            _reasoning_details_to_content(choice.get("delta"))
        return super().normalize(chunk)


def _load(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _check_base_resp(provider: str, answer: dict[str, Any]) -> bool:
    """Raise the error a base_resp reports; return True when output was blocked."""
    base_resp = answer.get("base_resp")
    if not isinstance(base_resp, dict) or not base_resp.get("status_code"):
        return False
    if base_resp.get("status_code") == OUTPUT_SENSITIVE:
        return True
    raise _base_resp_error(provider, base_resp)


def _base_resp_error(provider: str, base_resp: dict[str, Any]) -> ProviderStatusError:
    code = base_resp.get("status_code")
    status, error_type = ERROR_CODES.get(code, (500, "api_error"))
    return ProviderStatusError(
        f"Provider {provider} returned MiniMax error {code}: "
        f"{base_resp.get('status_msg') or 'no error message'}",
        upstream_status=status,
        error_type=error_type,
        code=f"minimax_{code}",
    )


def _blocked_result(request: ChatRequest) -> ChatResult:
    body = {
        "id": "",
        "object": "chat.completion",
        "created": 0,
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": "content_filter",
                "logprobs": None,
            }
        ],
    }
    return ChatResult(body=body, usage=Usage())


def _finish_chunk(chunk: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": chunk.get("id", ""),
        "object": "chat.completion.chunk",
        "created": chunk.get("created", 0),
        "model": chunk.get("model", ""),
        "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}],
    }


def _reasoning_details_to_content(message: Any) -> None:
    if not isinstance(message, dict):
        return
    details = message.pop("reasoning_details", None)
    if not isinstance(details, list) or message.get("reasoning_content"):
        return
    texts = [
        str(item.get("text") or "")
        for item in details
        if isinstance(item, dict) and item.get("text")
    ]
    if texts:
        message["reasoning_content"] = "".join(texts)
