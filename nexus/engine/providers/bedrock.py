"""Amazon Bedrock: Converse and ConverseStream for chat, InvokeModel for embeddings.

Requests go to `{base_url}/model/{modelId}/converse` (or `/converse-stream`, or
`/invoke` for embeddings). base_url defaults to
`https://bedrock-runtime.{region}.amazonaws.com` from the connection's region, which
is required because it is part of the signature. The credential is a JSON object
`{"access_key_id", "secret_access_key", "session_token"?}`. Every request is signed
with botocore's SigV4 signer for the service name `bedrock`.

Embeddings serve Titan text models (`amazon.titan-embed-*`, one input per call, so a
batch becomes concurrent calls) and Cohere models on Bedrock (`cohere.embed-*`, one
call with a texts array).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from nexus.engine.canonical import (
    ChatRequest,
    ChatResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    Usage,
)
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.http import UpstreamClient, UpstreamRequest
from nexus.engine.providers.anthropic_format import openai_usage
from nexus.engine.providers.base import (
    ERROR_TYPES,
    BufferedResponse,
    OptionsError,
    ProviderAdapter,
    StreamDecoder,
    estimate_tokens,
    load_json,
)
from nexus.engine.providers.bedrock_converse import (
    BedrockOptions,
    build_converse_body,
    max_tokens_of,
    response_format_tool,
)
from nexus.engine.providers.bedrock_response import (
    finish_reason_for,
    message_from_content,
    usage_from_converse,
)
from nexus.engine.providers.bedrock_stream import BedrockStreamDecoder
from nexus.engine.snapshot import ConnectionEntry

logger = logging.getLogger(__name__)

# botocore logs the canonical request, which contains the session token, at debug
# level.
logging.getLogger("botocore.auth").setLevel(logging.INFO)

SIGNING_NAME = "bedrock"

# Bedrock error types (the x-amzn-ErrorType header) whose meaning differs from the
# HTTP status: Bedrock returns 403 for a rejected credential, which callers of an
# OpenAI-style API expect as 401.
ERROR_STATUS = {
    "UnrecognizedClientException": (401, "authentication_error"),
    "InvalidSignatureException": (401, "authentication_error"),
    "ExpiredTokenException": (401, "authentication_error"),
    "MissingAuthenticationTokenException": (401, "authentication_error"),
    "IncompleteSignatureException": (401, "authentication_error"),
    "ValidationException": (400, "invalid_request_error"),
    "ThrottlingException": (429, "rate_limit_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_error"),
    "ModelNotReadyException": (503, "api_error"),
    "ServiceUnavailableException": (503, "api_error"),
}


@dataclass
class BatchRequest(UpstreamRequest):
    """Several InvokeModel calls that together answer one embeddings request."""

    parts: list[UpstreamRequest] = field(default_factory=list)


class BedrockAdapter(ProviderAdapter):
    """Amazon Bedrock Runtime, signed with SigV4."""

    name = "bedrock"
    native_format = "bedrock"
    supports_embeddings = True
    options_class = BedrockOptions
    options: BedrockOptions

    def __init__(self, connection: ConnectionEntry) -> None:
        if not connection.region:
            raise OptionsError(
                f"Provider connection {connection.name} of type bedrock needs a "
                "region, for example us-east-1."
            )
        super().__init__(connection)
        if not connection.base_url:
            self.base_url = f"https://bedrock-runtime.{connection.region}.amazonaws.com"
        self.credentials = _parse_credentials(connection)

    async def authorize(self, request: UpstreamRequest) -> None:
        """Sign the request (and each part of a batch) with SigV4."""
        for part in request.parts if isinstance(request, BatchRequest) else [request]:
            self._sign(part)

    async def send(
        self, client: UpstreamClient, request: UpstreamRequest, *, timeout: float
    ) -> Any:
        """Send the request; a Titan batch becomes concurrent calls, errors gain their type."""
        if isinstance(request, BatchRequest):
            return await self._send_batch(client, request, timeout)
        response = await client.send(request, timeout=timeout)
        if response.status < 400:
            return response
        async with response:
            body = await response.read()
        return _typed_error(response.status, response.headers, body)

    def model_url(self, upstream_model: str, action: str) -> str:
        """Return the URL exactly as aiohttp sends it, so the signature matches the wire."""
        model = quote(upstream_model, safe="")
        return str(URL(f"{self.base_url}/model/{model}/{action}"))

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Translate a canonical chat request into a Converse or ConverseStream call."""
        body = build_converse_body(request, upstream_model, self.options)
        action = "converse-stream" if request.stream else "converse"
        headers = {}
        if request.stream:
            headers["accept"] = "application/vnd.amazon.eventstream"
        return self.json_request(self.model_url(upstream_model, action), body, headers)

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Translate a Converse answer into an OpenAI chat.completion."""
        parsed = load_json(body, self.connection.name)
        output = parsed.get("output") if isinstance(parsed, dict) else None
        message = output.get("message") if isinstance(output, dict) else None
        if not isinstance(message, dict) or not isinstance(
            message.get("content"), list
        ):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned a Converse answer without "
                "output.message.content."
            )

        response_tool = response_format_tool(request)
        converted = message_from_content(message["content"], response_tool)
        usage = usage_from_converse(parsed.get("usage"))
        limit = max_tokens_of(request)
        stop_reason = parsed.get("stopReason")
        has_tool_calls = bool(converted.get("tool_calls"))
        finish_reason = finish_reason_for(
            stop_reason,
            has_tool_calls=has_tool_calls,
            only_response_tool=bool(response_tool) and not has_tool_calls,
            truncated=limit is not None and usage.output_tokens >= limit,
        )
        completion = {
            "id": f"chatcmpl-bedrock-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": converted,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": openai_usage(usage),
        }
        return ChatResult(body=completion, usage=usage)

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return BedrockStreamDecoder(self.connection.name, response_format_tool(request))

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Bedrock's `{message}` error; send folds the error type header into `__type`."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        message = parsed.get("message") or parsed.get("Message") or "no error message"
        error_name = str(parsed.get("__type") or "")
        mapped_status, error_type = ERROR_STATUS.get(
            error_name, (status, ERROR_TYPES.get(status, "api_error"))
        )
        label = f" {error_name}" if error_name else ""
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}{label}: {message}",
            upstream_status=mapped_status,
            error_type=error_type,
        )

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return InvokeModel calls: one per input for Titan, one for Cohere."""
        texts = _texts(request)
        url = self.model_url(upstream_model, "invoke")
        dimensions = request.body.get("dimensions")
        if upstream_model.startswith("amazon.titan-embed"):
            parts = []
            for text in texts:
                payload: dict[str, Any] = {"inputText": text}
                if dimensions is not None:
                    payload["dimensions"] = dimensions
                parts.append(self.json_request(url, payload, {}))
            return BatchRequest(parts[0].method, url, {}, b"", parts=parts)
        if upstream_model.startswith("cohere.embed"):
            payload = {
                "texts": texts,
                "input_type": self.options.cohere_input_type,
                "embedding_types": ["float"],
            }
            if dimensions is not None:
                payload["output_dimension"] = dimensions
            return self.json_request(url, payload, {})
        raise InvalidRequestError(
            f"Bedrock model {upstream_model} is not a supported embedding model; "
            "use an amazon.titan-embed-* or cohere.embed-* model."
        )

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        """Read Titan answers (a JSON list, one per input) or one Cohere answer."""
        parsed = load_json(body, self.connection.name)
        if isinstance(parsed, list):
            return self._titan_result(parsed)
        embeddings = parsed.get("embeddings") if isinstance(parsed, dict) else None
        if isinstance(embeddings, dict):
            embeddings = embeddings.get("float")
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned embeddings that do not "
                "match the inputs."
            )
        # NOTE: Cohere on Bedrock reports no token count, so input tokens are estimated.
        tokens = sum(estimate_tokens(text) for text in _texts(request))
        return EmbeddingsResult(
            vectors=embeddings, usage=Usage(input_tokens=tokens), model=request.model
        )

    def _titan_result(self, answers: list[Any]) -> EmbeddingsResult:
        vectors = []
        tokens = 0
        for answer in answers:
            vector = answer.get("embedding") if isinstance(answer, dict) else None
            if not isinstance(vector, list):
                raise ProviderProtocolError(
                    f"Provider {self.connection.name} returned a Titan answer "
                    "without an embedding."
                )
            vectors.append(vector)
            count = answer.get("inputTextTokenCount")
            tokens += count if isinstance(count, int) else 0
        return EmbeddingsResult(
            vectors=vectors, usage=Usage(input_tokens=tokens, reported=True)
        )

    def _sign(self, request: UpstreamRequest) -> None:
        signable = AWSRequest(
            method=request.method,
            url=request.url,
            data=request.body,
            headers={
                name: value
                for name, value in request.headers.items()
                if name.lower() not in ("authorization", "x-amz-date")
            },
        )
        SigV4Auth(self.credentials, SIGNING_NAME, self.connection.region).add_auth(
            signable
        )
        request.headers = dict(signable.headers.items())

    async def _send_batch(
        self, client: UpstreamClient, batch: BatchRequest, timeout: float
    ) -> BufferedResponse:
        limit = asyncio.Semaphore(self.options.embedding_concurrency)

        async def call(part: UpstreamRequest) -> BufferedResponse:
            async with limit:
                response = await client.send(part, timeout=timeout)
                async with response:
                    body = await response.read()
            if response.status >= 400:
                return _typed_error(response.status, response.headers, body)
            return BufferedResponse(response.status, body)

        answers = await asyncio.gather(*(call(part) for part in batch.parts))
        for answer in answers:
            if answer.status >= 400:
                return answer
        combined = b"[" + b",".join(answer.body for answer in answers) + b"]"
        return BufferedResponse(200, combined)


def _typed_error(status: int, headers: Any, body: bytes) -> BufferedResponse:
    """Return the error body with the x-amzn-ErrorType header folded in as `__type`."""
    error_name = str(headers.get("x-amzn-ErrorType") or "").split(":", 1)[0]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = {"message": body[:200].decode("utf-8", "replace").strip()}
    if not isinstance(parsed, dict):
        parsed = {}
    if error_name and not parsed.get("__type"):
        parsed["__type"] = error_name
    return BufferedResponse(status, orjson.dumps(parsed))


def _parse_credentials(connection: ConnectionEntry) -> Credentials:
    try:
        data = orjson.loads(connection.credential or "{}")
    except orjson.JSONDecodeError:
        data = None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("access_key_id"), str)
        or not isinstance(data.get("secret_access_key"), str)
    ):
        raise OptionsError(
            f"The credential of provider connection {connection.name} must be a JSON "
            'object {"access_key_id", "secret_access_key", "session_token"?}.'
        )
    token = data.get("session_token")
    return Credentials(
        data["access_key_id"],
        data["secret_access_key"],
        token if isinstance(token, str) and token else None,
    )


def _texts(request: EmbeddingsRequest) -> list[str]:
    if not all(isinstance(item, str) for item in request.inputs):
        raise InvalidRequestError(
            "'input' must be text for Bedrock embedding models; token ids are not "
            "supported.",
            param="input",
        )
    return list(request.inputs)
