"""Gemini streamGenerateContent (alt=sse) streams in canonical chunk form."""

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.engine.errors import ProviderProtocolError
from nexus.engine.providers.base import StreamDecoder
from nexus.engine.providers.gemini_format import (
    finish_reason_for,
    google_error,
    log_block,
    safety_block,
    thinking_block,
    tool_call_from_part,
    usage_from_gemini,
)
from nexus.engine.sse import Event, SSEParser

logger = logging.getLogger(__name__)


@dataclass
class _Candidate:
    """Stream state of one candidate (one OpenAI choice)."""

    tool_count: int = 0
    finished: bool = False
    text_sent: bool = False
    thoughts: str = ""
    pending_signature: str = ""


class GeminiStreamDecoder(StreamDecoder):
    """Decode streamGenerateContent (alt=sse) events into chat.completion.chunk objects.

    Every event is a whole GenerateContentResponse. A functionCall part arrives
    complete, so each call is sent as a start delta (id, name, empty arguments)
    followed by one delta with all its arguments. The finish chunk of a candidate
    follows its finishReason. Gemini streams have no end marker and repeat usage in
    every event, so the usage-only chunk comes when the upstream closes.
    """

    def __init__(self, provider: str, max_tokens: int | None = None) -> None:
        super().__init__()
        self.provider = provider
        self.max_tokens = max_tokens
        self.parser = SSEParser()
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.model = ""
        self.created = int(time.time())
        self.candidates: dict[int, _Candidate] = {}

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._decode(self.parser.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        chunks = self._decode(self.parser.finish())
        if self.finished and self.usage.reported:
            usage_chunk = self._chunk(None, {})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self.usage.to_openai()
            chunks.append(usage_chunk)
        return chunks

    def _decode(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in events:
            if event.data:
                chunks.extend(self._handle(self._parse(event.data)))
        return chunks

    def _parse(self, data: str) -> dict[str, Any]:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderProtocolError(
                f"Provider {self.provider} streamed an event that is not JSON."
            ) from None
        if not isinstance(parsed, dict):
            raise ProviderProtocolError(
                f"Provider {self.provider} streamed an event that is not an object."
            )
        if isinstance(parsed.get("error"), dict):
            error = parsed["error"]
            code = error.get("code")
            raise google_error(
                code if isinstance(code, int) and code >= 400 else 500,
                orjson.dumps(parsed),
                self.provider,
            )
        return parsed

    def _handle(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(data.get("responseId"), str) and data["responseId"]:
            self.id = "chatcmpl-" + data["responseId"]
        if isinstance(data.get("modelVersion"), str):
            self.model = data["modelVersion"]
        if isinstance(data.get("usageMetadata"), dict):
            self.usage = usage_from_gemini(data["usageMetadata"])

        candidates = data.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            return self._prompt_blocked(data.get("promptFeedback"))
        chunks: list[dict[str, Any]] = []
        for position, candidate in enumerate(candidates):
            if isinstance(candidate, dict):
                index = candidate.get("index", position)
                chunks.extend(self._candidate(index, candidate))
        self.finished = bool(self.candidates) and all(
            state.finished for state in self.candidates.values()
        )
        return chunks

    def _prompt_blocked(self, feedback: Any) -> list[dict[str, Any]]:
        if not isinstance(feedback, dict) or not feedback.get("blockReason"):
            return []
        block = safety_block(
            "prompt", feedback.get("blockReason"), feedback.get("safetyRatings")
        )
        log_block(block)
        self.candidates[0] = _Candidate(finished=True)
        self.finished = True
        final = self._chunk(0, {}, "content_filter")
        final["choices"][0]["safety_block"] = block
        return [self._chunk(0, {"role": "assistant", "content": ""}), final]

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        state = self.candidates.get(index)
        if state is None:
            state = self.candidates[index] = _Candidate()
            chunks.append(self._chunk(index, {"role": "assistant", "content": ""}))
        if state.finished:
            return chunks

        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                chunks.extend(self._part(index, state, part))

        reason = candidate.get("finishReason")
        if reason:
            chunks.extend(self._finish_candidate(index, state, candidate))
        return chunks

    def _part(
        self, index: int, state: _Candidate, part: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Return the deltas of one part, in the order the part carries them."""
        if isinstance(part.get("functionCall"), dict):
            call = tool_call_from_part(
                part["functionCall"], part.get("thoughtSignature")
            )
            return self._tool_call(index, state, call)
        chunks: list[dict[str, Any]] = []
        text = part.get("text")
        thought = part.get("thought") is True
        if thought and isinstance(text, str) and text:
            state.thoughts += text
            chunks.append(self._chunk(index, {"reasoning_content": text}))
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature and state.text_sent:
            # A thinking block now would split the response text in two for
            # /v1/messages callers, so it waits for the end of the candidate.
            state.pending_signature = signature
        elif isinstance(signature, str) and signature:
            # Sent before the part's text, it closes the open thinking block.
            block = thinking_block(state.thoughts, signature)
            chunks.append(self._chunk(index, {"thinking_blocks": [block]}))
        if not thought and isinstance(text, str) and text:
            state.text_sent = True
            chunks.append(self._chunk(index, {"content": text}))
        return chunks

    def _tool_call(
        self, index: int, state: _Candidate, call: dict[str, Any]
    ) -> list[dict[str, Any]]:
        position = state.tool_count
        state.tool_count += 1
        function = call["function"]
        start = {
            "index": position,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        arguments = {
            "index": position,
            "function": {"arguments": function["arguments"]},
        }
        return [
            self._chunk(index, {"tool_calls": [start]}),
            self._chunk(index, {"tool_calls": [arguments]}),
        ]

    def _finish_candidate(
        self, index: int, state: _Candidate, candidate: dict[str, Any]
    ) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        if state.pending_signature:
            block = thinking_block("", state.pending_signature)
            chunks.append(self._chunk(index, {"thinking_blocks": [block]}))
        truncated = bool(self.max_tokens) and self.usage.output_tokens >= (
            self.max_tokens or 0
        )
        finish_reason = finish_reason_for(
            candidate["finishReason"],
            has_tool_calls=state.tool_count > 0,
            truncated=truncated,
        )
        final = self._chunk(index, {}, finish_reason)
        if finish_reason == "content_filter":
            block = safety_block(
                "candidate", candidate["finishReason"], candidate.get("safetyRatings")
            )
            final["choices"][0]["safety_block"] = block
            log_block(block)
        chunks.append(final)
        state.finished = True
        return chunks

    def _chunk(
        self, index: int | None, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index or 0, "delta": delta, "finish_reason": finish_reason}
            ],
        }
