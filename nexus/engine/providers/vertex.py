"""Vertex AI codec: Gemini models and Anthropic Claude models in a Google Cloud project.

Requests go to
`{base_url}/{api_version}/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}`.
base_url defaults to the regional host of the connection's region
(`https://{region}-aiplatform.googleapis.com`, `https://aiplatform.googleapis.com`
for global). The region is the connection's region field (default global) and
the project is options.project_id, else the service account's project_id.

The credential is a service account JSON key. It is exchanged at options.token_url
for an OAuth access token (JWT bearer grant, RS256), which is cached and shared
through nexus.engine.providers.oauth.

The publisher comes from the upstream model id: `claude-*`, `anthropic/<model>` and
`publishers/anthropic/models/<model>` are Anthropic models, served by rawPredict and
streamRawPredict with an Anthropic Messages body that names no model and carries
`anthropic_version: vertex-2023-10-16`; everything else is a Gemini model served
by generateContent. Gemini models embed through `:predict`.
"""

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from nexus.engine.canonical import (
    ChatRequest,
    ChatResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    Usage,
)
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderError,
    ProviderProtocolError,
    ProviderStatusError,
)
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.anthropic import AnthropicAdapter
from nexus.engine.providers.base import ProviderAdapter, StreamDecoder, load_json
from nexus.engine.providers.gemini import (
    check_gemini_options,
    output_limit,
    text_inputs,
)
from nexus.engine.providers.gemini_format import (
    google_error,
    parse_generate_response,
    token_count,
)
from nexus.engine.providers.gemini_request import build_generate_body
from nexus.engine.providers.gemini_stream import GeminiStreamDecoder
from nexus.engine.providers.oauth import (
    GOOGLE_TOKEN_URL,
    TOKENS,
    CredentialError,
    ServiceAccountGrant,
    service_account_grant,
    service_account_info,
)
from nexus.engine.sse import SSEParser

logger = logging.getLogger(__name__)

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_REGION = "global"
# Multi-region endpoints with their own hosts, as the anthropic SDK's Vertex client uses.
MULTI_REGION_HOSTS = {
    "global": "https://aiplatform.googleapis.com",
    "us": "https://aiplatform.us.rep.googleapis.com",
    "eu": "https://aiplatform.eu.rep.googleapis.com",
}
PUBLISHERS = ("google", "anthropic")


@dataclass(frozen=True)
class VertexOptions(AnthropicAdapter.options_class):
    """Options of a Vertex AI connection.

    The Anthropic connection options (default_max_tokens, thinking_mode) apply to
    Claude models. project_id names the Google Cloud project. token_url is the OAuth
    token endpoint. api_version is the path segment before `projects/`.
    full_json_schema and safety_settings work as for the gemini provider type.
    """

    project_id: str = ""
    token_url: str = GOOGLE_TOKEN_URL
    api_version: str = "v1"
    full_json_schema: bool = False
    safety_settings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        inherited = getattr(super(), "__post_init__", None)
        if inherited is not None:
            inherited()
        check_gemini_options(self)
        if not isinstance(self.project_id, str):
            raise ValueError(f"project_id must be a string, got {self.project_id!r}")
        if not isinstance(self.token_url, str) or not self.token_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError(
                f"token_url must be an http(s) URL, got {self.token_url!r}"
            )


def split_model(upstream_model: str) -> tuple[str, str]:
    """Return (publisher, model id) for an upstream model id."""
    model = upstream_model
    if model.startswith("publishers/"):
        _, publisher, _, model = (model.split("/", 3) + ["", "", ""])[:4]
        return publisher, model
    publisher, slash, rest = model.partition("/")
    if slash and publisher in PUBLISHERS:
        return publisher, rest
    return ("anthropic" if model.startswith("claude") else "google"), model


class VertexAdapter(ProviderAdapter):
    """Gemini and Anthropic models on Vertex AI."""

    name = "vertex"
    native_format = "vertex"
    supports_embeddings = True
    options_class = VertexOptions
    options: VertexOptions

    def __init__(self, connection) -> None:
        super().__init__(connection)
        self.region = connection.region or DEFAULT_REGION
        if not connection.base_url:
            self.base_url = MULTI_REGION_HOSTS.get(
                self.region, f"https://{self.region}-aiplatform.googleapis.com"
            )
        anthropic_fields = {
            item.name: getattr(self.options, item.name)
            for item in dataclasses.fields(AnthropicAdapter.options_class)
        }
        self.claude = AnthropicAdapter(
            dataclasses.replace(connection, options=anthropic_fields)
        )
        self.grant: ServiceAccountGrant | None = None
        self.credential_error = ""
        self.project = self.options.project_id
        # Only the cheap shape check runs here. A bad credential fails its own
        # requests, not the config reload of every connection.
        try:
            info = service_account_info(connection.credential)
        except CredentialError as exc:
            self.credential_error = str(exc)
            return
        if not self.project and isinstance(info.get("project_id"), str):
            self.project = info["project_id"]

    def model_url(self, publisher: str, model: str, method: str) -> str:
        if not self.project:
            raise InvalidRequestError(
                f"Provider {self.connection.name} has no Google Cloud project: set "
                "options.project_id."
            )
        return (
            f"{self.base_url}/{self.options.api_version}/projects/{self.project}"
            f"/locations/{self.region}/publishers/{publisher}/models/{model}:{method}"
        )

    async def authorize(self, request: UpstreamRequest) -> None:
        """Add a bearer access token obtained with the service account key."""
        if self.grant is None and not self.credential_error:
            try:
                self.grant = await asyncio.to_thread(
                    service_account_grant,
                    self.connection.credential,
                    self.options.token_url,
                )
            except CredentialError as exc:
                self.credential_error = str(exc)
        if self.grant is None:
            raise ProviderError(
                f"Provider {self.connection.name} has an invalid service account "
                f"credential: {self.credential_error}",
                code="invalid_provider_credential",
            )
        token = await TOKENS.token(self.grant, self.connection.name)
        request.headers["authorization"] = f"Bearer {token}"

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Translate a canonical request for the model's publisher."""
        publisher, model = split_model(upstream_model)
        headers = {"accept": "text/event-stream"} if request.stream else {}
        if publisher == "anthropic":
            body = self._anthropic_body(request, model)
            method = "streamRawPredict" if request.stream else "rawPredict"
        elif publisher == "google":
            body = build_generate_body(
                request,
                full_json_schema=self.options.full_json_schema,
                safety_settings=self.options.safety_settings,
            )
            method = (
                "streamGenerateContent?alt=sse" if request.stream else "generateContent"
            )
        else:
            raise InvalidRequestError(
                f"Vertex AI publisher {publisher!r} is not supported; use google or "
                "anthropic models."
            )
        return self.json_request(
            self.model_url(publisher, model, method), body, headers
        )

    def _anthropic_body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        messages_request = self.claude.build_chat_request(request, model)
        body = orjson.loads(messages_request.body)
        body.pop("model", None)
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        return body

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Decode a Gemini or an Anthropic response, recognized by its shape."""
        parsed = load_json(body, self.connection.name)
        if isinstance(parsed, dict) and parsed.get("type") == "message":
            return self.claude.parse_chat_response(body, request)
        return parse_generate_response(
            parsed, self.connection.name, output_limit(request)
        )

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return PublisherStreamDecoder(
            GeminiStreamDecoder(self.connection.name, output_limit(request)),
            self.claude.chat_stream_decoder(request),
        )

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return a `:predict` request with one instance per input.

        NOTE: gemini-embedding-001 on Vertex AI takes one instance per request, so
        a list of several inputs is rejected by Vertex for that model.
        """
        publisher, model = split_model(upstream_model)
        if publisher != "google":
            raise InvalidRequestError(
                f"Model {upstream_model} on Vertex AI does not serve embeddings."
            )
        body: dict[str, Any] = {
            "instances": [{"content": text} for text in text_inputs(request)]
        }
        if request.body.get("dimensions") is not None:
            body["parameters"] = {"outputDimensionality": request.body["dimensions"]}
        return self.json_request(self.model_url(publisher, model, "predict"), body, {})

    def parse_embeddings_response(
        self, body: bytes, request: EmbeddingsRequest
    ) -> EmbeddingsResult:
        """Read `predictions[].embeddings.values` and their token counts."""
        parsed = load_json(body, self.connection.name)
        predictions = parsed.get("predictions") if isinstance(parsed, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(request.inputs):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned predictions that do not "
                "match the inputs."
            )
        vectors = []
        tokens = 0
        for prediction in predictions:
            embeddings = (
                prediction.get("embeddings") if isinstance(prediction, dict) else None
            )
            values = embeddings.get("values") if isinstance(embeddings, dict) else None
            if not isinstance(values, list):
                raise ProviderProtocolError(
                    f"Provider {self.connection.name} returned a prediction without "
                    "embedding values."
                )
            vectors.append(values)
            statistics = embeddings.get("statistics")
            if isinstance(statistics, dict):
                tokens += token_count(statistics.get("token_count"))
        usage = Usage(input_tokens=tokens, reported=bool(tokens))
        return EmbeddingsResult(vectors=vectors, usage=usage)

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read an Anthropic error body from Claude models, else a Google error body."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("type") == "error":
            return self.claude.parse_error(status, body)
        return google_error(status, body, self.connection.name)


class PublisherStreamDecoder(StreamDecoder):
    """Pick the Gemini or the Anthropic decoder from the first event of a stream.

    Anthropic events carry a `type` field, Gemini events do not. Bytes are kept
    until the first event is complete, then replayed into the chosen decoder.
    """

    def __init__(self, gemini: StreamDecoder, anthropic: StreamDecoder) -> None:
        super().__init__()
        self.gemini = gemini
        self.anthropic = anthropic
        self.inner: StreamDecoder | None = None
        self.probe = SSEParser()
        self.pending = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self.inner is None:
            self.pending += data
            if not self._choose(self.probe.feed(data)):
                return []
            data, self.pending = self.pending, b""
        return self._run(self.inner.feed, data)

    def finish(self) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        if self.inner is None:
            if not self._choose(self.probe.finish()):
                self.inner = self.gemini
            chunks = self._run(self.inner.feed, self.pending)
            self.pending = b""
        return chunks + self._run(self.inner.finish)

    def _choose(self, events: list) -> bool:
        for event in events:
            if not event.data:
                continue
            try:
                first = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                first = None
            anthropic = bool(event.event) or (
                isinstance(first, dict) and "type" in first
            )
            self.inner = self.anthropic if anthropic else self.gemini
            return True
        return False

    def _run(self, step, *args) -> list[dict[str, Any]]:
        try:
            return step(*args)
        finally:
            self.usage = self.inner.usage
            self.finished = self.inner.finished
