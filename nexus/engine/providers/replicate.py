"""Replicate predictions for language models.

base_url defaults to `https://api.replicate.com/v1`; the credential is the API token,
sent as a Bearer token. An upstream model `owner/name` creates a prediction at
`/models/{owner}/{name}/predictions`; `owner/name:version` or a bare version id uses
`/predictions` with that version.

A non-streamed request sends `Prefer: wait=<wait_seconds>` and, when the prediction is
still starting or processing after the wait, polls its `urls.get` every
poll_interval seconds within the upstream timeout. A streamed request creates the
prediction with `stream: true` and reads its `urls.stream` server-sent events
(output, error, done).

Replicate language models take one prompt string, built by this template. System
and developer messages are joined into `system_prompt`. Every other message becomes
`User: <text>` or `Assistant: <text>`, separated by blank lines, and the prompt ends
with `Assistant:` so the model continues as the assistant. One image
part may go into the `image` input (URL or data URL). Replicate models have no tools,
so a request with tools or tool messages is rejected with 400.

Usage comes from the prediction's metrics (input_token_count, output_token_count).
Streams carry no metrics, so their usage is estimated.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, Usage, text_of
from nexus.engine.errors import (
    InvalidRequestError,
    ProviderProtocolError,
    ProviderStatusError,
    ProviderTimeoutError,
)
from nexus.engine.http import UpstreamClient, UpstreamRequest
from nexus.engine.providers.base import (
    ERROR_TYPES,
    BufferedResponse,
    ProviderAdapter,
    StreamDecoder,
    estimate_tokens,
    load_json,
)
from nexus.engine.sse import Event, SSEParser

logger = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "canceled")
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


@dataclass(frozen=True)
class ReplicateOptions:
    """Options of a Replicate connection.

    wait_seconds (1 to 60) is how long Replicate keeps a create call open before it
    returns an unfinished prediction. poll_interval is the pause in seconds
    between status checks after that. extra_input is merged into every prediction's
    input, for model inputs that OpenAI chat has no field for (top_k, min_tokens).
    """

    wait_seconds: int = 60
    poll_interval: float = 1.0
    extra_input: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wait = self.wait_seconds
        if not isinstance(wait, int) or isinstance(wait, bool) or not 1 <= wait <= 60:
            raise ValueError(
                f"wait_seconds must be an integer from 1 to 60, got {wait!r}"
            )
        interval = self.poll_interval
        if (
            not isinstance(interval, (int, float))
            or isinstance(interval, bool)
            or interval <= 0
        ):
            raise ValueError(
                f"poll_interval must be a positive number, got {interval!r}"
            )
        if not isinstance(self.extra_input, dict):
            raise ValueError("extra_input must be a JSON object")


@dataclass
class PredictionRequest(UpstreamRequest):
    """A prediction create call and whether the response is streamed."""

    stream: bool = False


class ReplicateAdapter(ProviderAdapter):
    """Replicate's predictions API for language models."""

    name = "replicate"
    native_format = "replicate"
    default_base_url = "https://api.replicate.com/v1"
    options_class = ReplicateOptions
    options: ReplicateOptions

    def auth_headers(self) -> dict[str, str]:
        if not self.connection.credential:
            return {}
        return {"authorization": f"Bearer {self.connection.credential}"}

    def build_chat_request(
        self, request: ChatRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return the prediction create call for a canonical chat request."""
        payload: dict[str, Any] = {"input": build_input(request, self.options)}
        owner_name, _, version = upstream_model.partition(":")
        if version or "/" not in upstream_model:
            payload["version"] = version or upstream_model
            url = f"{self.base_url}/predictions"
        else:
            url = f"{self.base_url}/models/{owner_name}/predictions"
        headers = self.auth_headers()
        if request.stream:
            payload["stream"] = True
        else:
            headers["prefer"] = f"wait={self.options.wait_seconds}"
        created = self.json_request(url, payload, headers)
        return PredictionRequest(
            created.method,
            created.url,
            created.headers,
            created.body,
            stream=request.stream,
        )

    async def send(
        self, client: UpstreamClient, request: UpstreamRequest, *, timeout: float
    ) -> Any:
        """Create the prediction, then open its stream or poll it until it ends."""
        deadline = time.monotonic() + timeout
        response = await client.send(request, timeout=timeout)
        if response.status >= 400:
            return response
        async with response:
            body = await response.read()
        prediction = _prediction(
            load_json(body, self.connection.name), self.connection.name
        )

        if isinstance(request, PredictionRequest) and request.stream:
            stream_url = (prediction.get("urls") or {}).get("stream")
            if not isinstance(stream_url, str):
                raise ProviderStatusError(
                    f"Provider {self.connection.name} returned a prediction without "
                    "a stream URL; the model does not support streaming.",
                    upstream_status=400,
                    error_type="invalid_request_error",
                )
            headers = {"accept": "text/event-stream", "cache-control": "no-store"}
            headers.update(self.auth_headers())
            stream = UpstreamRequest("GET", stream_url, headers)
            return await client.send(stream, timeout=timeout)

        while prediction.get("status") not in TERMINAL:
            if time.monotonic() + self.options.poll_interval > deadline:
                raise ProviderTimeoutError(
                    f"Prediction {prediction.get('id')} did not finish within "
                    f"{timeout:g} s."
                )
            await asyncio.sleep(self.options.poll_interval)
            prediction = await self._poll(client, prediction, timeout)
        return BufferedResponse(200, orjson.dumps(prediction))

    async def _poll(
        self, client: UpstreamClient, prediction: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        get_url = (prediction.get("urls") or {}).get("get")
        if not isinstance(get_url, str):
            raise ProviderProtocolError(
                f"Provider {self.connection.name} returned an unfinished prediction "
                "without urls.get."
            )
        response = await client.send(
            UpstreamRequest("GET", get_url, self.auth_headers()), timeout=timeout
        )
        async with response:
            body = await response.read()
        if response.status >= 400:
            raise self.parse_error(response.status, body)
        return _prediction(load_json(body, self.connection.name), self.connection.name)

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Translate a finished prediction into an OpenAI chat.completion."""
        prediction = _prediction(
            load_json(body, self.connection.name), self.connection.name
        )
        _raise_if_failed(self.connection.name, prediction)
        output = prediction.get("output")
        if isinstance(output, list):
            text = "".join(str(piece) for piece in output)
        else:
            text = str(output or "")
        usage = _usage(prediction.get("metrics"))
        limit = _max_tokens(request)
        truncated = limit is not None and usage.output_tokens >= limit
        completion = {
            "id": str(prediction.get("id") or ""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    # NOTE: Replicate reports no stop reason; reaching max_tokens
                    # reads as length and everything else as stop.
                    "finish_reason": "length" if truncated else "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage.to_openai(),
        }
        return ChatResult(body=completion, usage=usage)

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        system, prompt = build_prompt(request)
        input_tokens = estimate_tokens(system + prompt)
        return ReplicateStreamDecoder(self.connection.name, input_tokens)

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read Replicate's problem-details error (`title`, `detail`)."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {"detail": body[:200].decode("utf-8", "replace").strip()}
        parsed = parsed if isinstance(parsed, dict) else {}
        detail = parsed.get("detail") or parsed.get("title") or "no error message"
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: {detail}",
            upstream_status=status,
            error_type=ERROR_TYPES.get(status, "api_error"),
        )


def build_prompt(request: ChatRequest) -> tuple[str, str]:
    """Return (system_prompt, prompt) for the messages; see the module docstring."""
    system: list[str] = []
    turns: list[str] = []
    for index, message in enumerate(request.messages):
        role = message["role"]
        param = f"messages[{index}]"
        if role in ("tool", "function") or message.get("tool_calls"):
            raise InvalidRequestError(
                f"'{param}' contains a tool call or result; Replicate models do not "
                "support tools.",
                param=param,
            )
        text = text_of(message.get("content"))
        if role in ("system", "developer"):
            if text:
                system.append(text)
        elif role == "user":
            turns.append(f"User: {text}")
        else:
            turns.append(f"Assistant: {text}")
    turns.append("Assistant:")
    return "\n\n".join(system), "\n\n".join(turns)


def build_input(request: ChatRequest, options: ReplicateOptions) -> dict[str, Any]:
    """Return the prediction input for a canonical chat request."""
    source = request.body
    if request.tools or source.get("tool_choice") not in (None, "none", "auto"):
        raise InvalidRequestError(
            "Replicate models do not support tools; remove 'tools' and 'tool_choice'.",
            param="tools",
        )
    if source.get("n") not in (None, 1):
        raise InvalidRequestError("'n' must be 1 for Replicate models.", param="n")
    system, prompt = build_prompt(request)
    if _wants_json(source.get("response_format")):
        # NOTE: Replicate has no JSON mode, so JSON output is only requested.
        system = f"{system}\n\n{JSON_INSTRUCTION}".strip()
    model_input: dict[str, Any] = {"prompt": prompt}
    if system:
        model_input["system_prompt"] = system
    limit = _max_tokens(request)
    if limit is not None:
        model_input["max_tokens"] = limit
    for name in (
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "seed",
    ):
        if source.get(name) is not None:
            model_input[name] = source[name]
    stop = source.get("stop")
    if stop:
        # Replicate's language models take stop sequences as one comma-separated string.
        model_input["stop_sequences"] = (
            stop if isinstance(stop, str) else ",".join(stop)
        )
    image = _image_input(request)
    if image:
        model_input["image"] = image
    model_input.update(options.extra_input)
    return model_input


def _wants_json(response_format: Any) -> bool:
    return isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )


def _image_input(request: ChatRequest) -> str | None:
    urls = []
    for message in request.messages:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "image_url":
                image = part.get("image_url")
                urls.append(image.get("url") if isinstance(image, dict) else image)
    if len(urls) > 1:
        raise InvalidRequestError(
            "Replicate models take at most one image per request.", param="messages"
        )
    return urls[0] if urls else None


def _max_tokens(request: ChatRequest) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _prediction(parsed: Any, provider: str) -> dict[str, Any]:
    if not isinstance(parsed, dict) or "status" not in parsed:
        raise ProviderProtocolError(
            f"Provider {provider} returned a body that is not a prediction."
        )
    return parsed


def _raise_if_failed(provider: str, prediction: dict[str, Any]) -> None:
    status = prediction.get("status")
    if status == "succeeded":
        return
    message = prediction.get("error") or f"the prediction ended as {status}"
    raise ProviderStatusError(
        f"Provider {provider} prediction {prediction.get('id')} failed: {message}",
        upstream_status=500 if status == "failed" else 499,
        error_type="api_error",
    )


def _usage(metrics: Any) -> Usage:
    if not isinstance(metrics, dict):
        return Usage()
    input_tokens = metrics.get("input_token_count")
    output_tokens = metrics.get("output_token_count")
    return Usage(
        input_tokens=input_tokens if isinstance(input_tokens, int) else 0,
        output_tokens=output_tokens if isinstance(output_tokens, int) else 0,
        reported=isinstance(input_tokens, int) or isinstance(output_tokens, int),
    )


class ReplicateStreamDecoder(StreamDecoder):
    """Decode a prediction's output stream into OpenAI chat.completion.chunk objects.

    `output` events carry text, `error` fails the stream and `done` ends it; a done
    event with a reason (canceled, error) also fails it. NOTE: the stream has no
    metrics, so output tokens count the output events (Replicate's language models
    send one token per event) and input tokens are estimated from the prompt.
    """

    def __init__(self, provider: str, input_tokens: int) -> None:
        super().__init__()
        self.provider = provider
        self.parser = SSEParser()
        self.id = f"chatcmpl-replicate-{time.time_ns()}"
        self.created = int(time.time())
        self.started = False
        self.usage = Usage(input_tokens=input_tokens)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._decode(self.parser.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._decode(self.parser.finish())

    def _decode(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in events:
            if self.finished:
                break
            chunks.extend(self._handle(event))
        return chunks

    def _handle(self, event: Event) -> list[dict[str, Any]]:
        chunks = []
        if not self.started and event.event in ("output", "done"):
            self.started = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        if event.event == "output":
            self.usage.output_tokens += 1
            if event.data:
                chunks.append(self._chunk({"content": event.data}))
            return chunks
        if event.event == "error":
            raise ProviderStatusError(
                f"Provider {self.provider} reported an error mid-stream: "
                f"{_error_detail(event.data)}",
                upstream_status=500,
                error_type="api_error",
            )
        if event.event == "done":
            reason = _error_detail(event.data, key="reason") if event.data else ""
            if reason:
                raise ProviderStatusError(
                    f"Provider {self.provider} ended the stream: {reason}",
                    upstream_status=499 if reason == "canceled" else 500,
                    error_type="api_error",
                )
            self.finished = True
            chunks.append(self._chunk({}, "stop"))
            chunks.append(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": "",
                    "choices": [],
                    "usage": self.usage.to_openai(),
                }
            )
        return chunks

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


def _error_detail(data: str, key: str = "detail") -> str:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if isinstance(parsed, dict):
        return str(parsed.get(key) or "")
    return data
