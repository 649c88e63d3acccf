"""Fake Replicate predictions API for language models.

Routes: ``POST /v1/models/{owner}/{name}/predictions``, ``POST /v1/predictions``
(with ``version``), ``GET /v1/predictions/{id}`` and ``GET /v1/streams/{id}``, the
stream URL that a prediction created with ``stream: true`` lists under
``urls.stream``. Requests need a Bearer token; errors are problem details
(``{"title", "detail", "status"}``).

Predictions finish at once: a create call answers ``succeeded`` with the output as a
list of word pieces and ``metrics.input_token_count`` / ``output_token_count``
(words of ``prompt`` plus ``system_prompt``, and of the output). A streamed create
answers ``starting``; its stream sends one ``output`` event per word piece, then
``done``. To test polling, script the create call with an unfinished prediction and
the ``GET`` calls with the later states.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from nexus.fakeprovider.reply import (
    Prompt,
    Reply,
    compose_reply,
    count_words,
    split_pieces,
)
from nexus.fakeprovider.vendors.base import (
    Call,
    Endpoint,
    Vendor,
    next_request_id,
    sse_event,
)

logger = logging.getLogger(__name__)


class ReplicateVendor(Vendor):
    """Replicate's predictions API; predictions are kept in memory."""

    name: ClassVar[str] = "replicate"

    def __init__(self) -> None:
        self.predictions: dict[str, tuple[dict[str, Any], Reply]] = {}

    def endpoints(self) -> list[Endpoint]:
        """Return the create, get and stream routes."""
        return [
            Endpoint("POST", "/v1/models/{owner}/{model}/predictions", self.create),
            Endpoint("POST", "/v1/predictions", self.create),
            Endpoint("GET", "/v1/predictions/{prediction_id}", self.get),
            Endpoint("GET", "/v1/streams/{prediction_id}", self.stream_output),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing bearer token, or one that differs from the expected key."""
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        if (
            scheme.lower() != "bearer"
            or not key.strip()
            or (expected_key is not None and key.strip() != expected_key)
        ):
            return self.error_response(
                401,
                "Unauthenticated",
                "You did not pass a valid authentication token",
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return a problem-details body; the title is the error type."""
        return {"title": error_type, "detail": message}

    def error_response(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> web.Response:
        """Return a problem-details error that also carries its status."""
        body = {**self.error_body(error_type, message), "status": status}
        response = self.json_response(body, status, headers)
        response.content_type = "application/problem+json"
        return response

    async def create(self, call: Call) -> web.StreamResponse:
        """Create a prediction; it succeeds at once unless streamed."""
        body = call.body
        model_input = body.get("input") if isinstance(body, dict) else None
        if not isinstance(model_input, dict) or not isinstance(
            model_input.get("prompt"), str
        ):
            return self.error_response(
                422, "Input validation failed", "input: prompt is required"
            )
        if call.request.path == "/v1/predictions" and not body.get("version"):
            return self.error_response(
                422, "Input validation failed", "version is required"
            )
        reply = compose_reply(_prompt(call, model_input), call.reply_override)
        prediction_id = next_request_id("pred")
        base = f"{call.request.scheme}://{call.request.host}"
        prediction = {
            "id": prediction_id,
            "model": _model_name(call),
            "version": body.get("version") or "hidden",
            "input": model_input,
            "logs": "",
            "output": None,
            "error": None,
            "status": "starting",
            "created_at": "2025-01-01T00:00:00.000Z",
            "urls": {
                "get": f"{base}/v1/predictions/{prediction_id}",
                "cancel": f"{base}/v1/predictions/{prediction_id}/cancel",
                "web": f"https://replicate.com/p/{prediction_id}",
            },
        }
        if body.get("stream"):
            prediction["urls"]["stream"] = f"{base}/v1/streams/{prediction_id}"
        else:
            _finish(prediction, reply)
        self.predictions[prediction_id] = (prediction, reply)
        return self.json_response(prediction, 201)

    async def get(self, call: Call) -> web.StreamResponse:
        """Return a stored prediction, finished."""
        stored = self.predictions.get(call.request.match_info["prediction_id"])
        if stored is None:
            return self.error_response(
                404, "Not found", "The requested resource does not exist"
            )
        prediction, reply = stored
        _finish(prediction, reply)
        return self.json_response(prediction)

    async def stream_output(self, call: Call) -> web.StreamResponse:
        """Stream a prediction's output as output events, then done."""
        stored = self.predictions.get(call.request.match_info["prediction_id"])
        if stored is None:
            return self.error_response(
                404, "Not found", "The requested resource does not exist"
            )
        prediction, reply = stored
        events = [
            output_event(index, piece)
            for index, piece in enumerate(split_pieces(reply.text))
        ]
        events.append(sse_event({}, "done"))
        _finish(prediction, reply)
        return await self.stream(call, events)


def output_event(index: int, text: str) -> bytes:
    """Encode an output event; each line of text goes on its own data line."""
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: output\nid: {index}\n{lines}\n".encode()


def _model_name(call: Call) -> str:
    info = call.request.match_info
    if "owner" in info:
        return f"{info['owner']}/{info['model']}"
    return "replicate/version-model"


def _prompt(call: Call, model_input: dict[str, Any]) -> Prompt:
    prompt = model_input["prompt"]
    system = str(model_input.get("system_prompt") or "")
    user_turns = [
        line.removeprefix("User: ")
        for line in prompt.split("\n\n")
        if line.startswith("User: ")
    ]
    return Prompt(
        model=_model_name(call),
        last_user_text=user_turns[-1] if user_turns else prompt,
        input_words=count_words(prompt) + count_words(system),
        ends_with_user_text=True,
        max_output_tokens=model_input.get("max_tokens"),
    )


def _finish(prediction: dict[str, Any], reply: Reply) -> None:
    prediction.update(
        status="succeeded",
        output=split_pieces(reply.text),
        completed_at="2025-01-01T00:00:01.000Z",
        metrics={
            "predict_time": 0.1,
            "input_token_count": reply.usage.input_tokens,
            "output_token_count": reply.usage.output_tokens,
        },
    )
