"""Zhipu GLM (BigModel and Z.AI), OpenAI-like at `{base_url}/chat/completions`.

base_url defaults to `https://open.bigmodel.cn/api/paas/v4` (Z.AI's international
endpoint is `https://api.z.ai/api/paas/v4`); the credential is the API key, sent as
a Bearer token. Errors are `{"error": {"code": "<business code>", "message"}}` and
the business code decides the status (ERROR_CODES).

Rewrites from OpenAI: tool_choice required or named is sent as auto (named offers
only that tool), reasoning_effort becomes `thinking: {type: enabled|disabled}`,
temperature is capped at 1, and response_format json_schema becomes json_object with
the schema in a system instruction. GLM's finish reason `sensitive` maps to
content_filter and `network_error` fails the response.
"""

import logging
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, EmbeddingsRequest
from nexus.engine.errors import ProviderStatusError
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ERROR_TYPES, StreamDecoder
from nexus.engine.providers.openai import OpenAIAdapter
from nexus.engine.providers.openai_dialect import (
    CANONICAL_FINISH_REASONS,
    DialectStreamDecoder,
    emulate_tool_choice,
    map_finish_reasons,
)

logger = logging.getLogger(__name__)

FINISH_REASONS = {
    **CANONICAL_FINISH_REASONS,
    "sensitive": "content_filter",
    "model_context_window_exceeded": "length",
}
FAILURES = {"network_error": 502}

# Business error code to (HTTP status, OpenAI error type), from Zhipu's error code
# reference. Codes not listed keep the HTTP status of the response.
ERROR_CODES = {
    "1000": (401, "authentication_error"),
    "1001": (401, "authentication_error"),
    "1002": (401, "authentication_error"),
    "1003": (401, "authentication_error"),
    "1004": (401, "authentication_error"),
    "1110": (403, "permission_error"),
    "1111": (403, "permission_error"),
    "1112": (403, "permission_error"),
    "1113": (429, "insufficient_quota"),
    "1120": (503, "api_error"),
    "1121": (403, "permission_error"),
    "1210": (400, "invalid_request_error"),
    "1211": (404, "not_found_error"),
    "1212": (400, "invalid_request_error"),
    "1213": (400, "invalid_request_error"),
    "1214": (400, "invalid_request_error"),
    "1215": (400, "invalid_request_error"),
    "1220": (403, "permission_error"),
    "1221": (404, "not_found_error"),
    "1222": (404, "not_found_error"),
    "1234": (502, "api_error"),
    "1261": (400, "invalid_request_error"),
    "1301": (400, "invalid_request_error"),
    "1302": (429, "rate_limit_error"),
    "1303": (429, "rate_limit_error"),
    "1304": (429, "rate_limit_error"),
    "1305": (429, "rate_limit_error"),
    "1308": (429, "rate_limit_error"),
    "1310": (429, "rate_limit_error"),
    "1312": (529, "overloaded_error"),
}


class GLMAdapter(OpenAIAdapter):
    """Zhipu's GLM chat completions API."""

    name = "glm"
    native_format = "glm"
    default_base_url = "https://open.bigmodel.cn/api/paas/v4"
    # GLM sends usage in the last chunk without being asked.
    accepts_stream_options = False

    def rewrite_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Fit tool_choice, reasoning, temperature and response_format to GLM."""
        emulate_tool_choice(body)
        # The vendor streams usage unasked and does not document stream_options.
        body.pop("stream_options", None)
        effort = body.pop("reasoning_effort", None)
        if effort is not None:
            enabled = effort != "none"
            body["thinking"] = {"type": "enabled" if enabled else "disabled"}
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)) and temperature > 1:
            body["temperature"] = 1.0
        _json_schema_to_instruction(body)
        return body

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Read the OpenAI-like response and map GLM's finish reasons."""
        result = super().parse_chat_response(body, request)
        map_finish_reasons(
            result.body["choices"], FINISH_REASONS, FAILURES, self.connection.name
        )
        return result

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return DialectStreamDecoder(self.connection.name, FINISH_REASONS, FAILURES)

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return an embeddings request without encoding_format, which GLM lacks."""
        body = dict(request.body)
        body["model"] = upstream_model
        body.pop("encoding_format", None)
        return self.json_request(
            f"{self.base_url}/embeddings", body, self.auth_headers()
        )

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Map GLM's business error code to a status; unknown codes keep the HTTP one."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {}
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if not isinstance(error, dict):
            return super().parse_error(status, body)
        code = str(error.get("code") or "")
        mapped, error_type = ERROR_CODES.get(
            code, (status, ERROR_TYPES.get(status, "api_error"))
        )
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status} (GLM code "
            f"{code or 'none'}): {error.get('message') or 'no error message'}",
            upstream_status=mapped,
            error_type=error_type,
            code=f"glm_{code}" if code else None,
        )


def _json_schema_to_instruction(body: dict[str, Any]) -> None:
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return
    if response_format.get("type") != "json_schema":
        return
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    body["response_format"] = {"type": "json_object"}
    instruction = "Respond with a single JSON object"
    if isinstance(schema, dict):
        instruction += (
            " that matches this JSON schema: " + orjson.dumps(schema).decode()
        )
    body["messages"] = [
        {"role": "system", "content": instruction + "."},
        *body["messages"],
    ]
