"""Gemini answers, streams and errors in canonical (OpenAI chat) form.

The Gemini API and Gemini models on Vertex AI answer in the same shape, so both
codecs decode here; gemini_request builds the requests.

Canonical carriers for Gemini features that OpenAI chat has no field for:

- A thought signature on a functionCall part travels inside the tool call id
  (`call_<hex>__ts__<base64url of the signature>`), so it returns with the tool call
  in the next turn from any client, including Anthropic SDK callers.
- A thought signature on a text part travels in `thinking_blocks` as a thinking
  block whose signature is `gemini:<signature>`; thought text goes to
  reasoning_content as well.
- A choice that Gemini blocked carries `safety_block` with the block reason and the
  blocked harm categories. A blocked prompt (no candidates, promptFeedback
  blockReason) is answered as HTTP 200 with finish_reason content_filter and no
  content, and its prompt tokens are charged as Gemini reports them.
"""

import base64
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.engine.canonical import ChatResult, Usage
from nexus.engine.errors import ProviderProtocolError, ProviderStatusError
from nexus.engine.providers.base import ERROR_TYPES, StreamDecoder
from nexus.engine.sse import Event, SSEParser

logger = logging.getLogger(__name__)

# reasoning_effort to thinkingBudget in tokens. 24576 is the largest budget that
# Gemini 2.5 Flash accepts, so high and xhigh stay valid on every 2.5 model.
EFFORT_BUDGETS = {
    "minimal": 512,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
}

# Gemini finishReason to OpenAI finish_reason. STOP becomes tool_calls when the
# candidate holds functionCall parts.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
}
# Documented finishReason values with no OpenAI counterpart. They take the fallback
# of finish_reason_for without a warning.
UNMAPPED_FINISH_REASONS = {
    "FINISH_REASON_UNSPECIFIED",
    "OTHER",
    "LANGUAGE",
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE",
    "MALFORMED_RESPONSE",
    "NO_IMAGE",
    "IMAGE_OTHER",
}

# google.rpc status names to OpenAI error types. UNAVAILABLE is how Gemini reports
# an overloaded model (HTTP 503), so it keeps that meaning.
GOOGLE_ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAVAILABLE": "overloaded_error",
    "INTERNAL": "api_error",
    "DEADLINE_EXCEEDED": "api_error",
}

SIGNATURE_MARKER = "__ts__"
TEXT_SIGNATURE_PREFIX = "gemini:"

_unknown_finish_reasons: set[str] = set()


def tool_call_id(signature: Any = None) -> str:
    """Return a new tool call id that carries the thought signature, if any."""
    call_id = "call_" + uuid.uuid4().hex[:24]
    if isinstance(signature, str) and signature:
        encoded = base64.urlsafe_b64encode(signature.encode()).rstrip(b"=")
        call_id += SIGNATURE_MARKER + encoded.decode("ascii")
    return call_id


def signature_from_tool_call_id(call_id: str) -> str | None:
    """Return the thought signature carried by a tool call id, or None."""
    _, marker, encoded = call_id.partition(SIGNATURE_MARKER)
    if not marker or not encoded:
        return None
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        return base64.urlsafe_b64decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        logger.debug("tool call id carries an unreadable thought signature")
        return None


def text_signature(thinking_blocks: Any) -> str | None:
    """Return the Gemini thought signature of the last thinking block that has one."""
    if not isinstance(thinking_blocks, list):
        return None
    for block in reversed(thinking_blocks):
        signature = block.get("signature") if isinstance(block, dict) else None
        if isinstance(signature, str) and signature.startswith(TEXT_SIGNATURE_PREFIX):
            return signature[len(TEXT_SIGNATURE_PREFIX) :]
    return None


def thinking_block(thoughts: str, signature: str) -> dict[str, Any]:
    """Return the thinking block that carries a text part's thought signature."""
    return {
        "type": "thinking",
        "thinking": thoughts,
        "signature": TEXT_SIGNATURE_PREFIX + signature,
    }


def token_count(value: Any) -> int:
    """Return value if it is a positive integer token count, else 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def usage_from_gemini(metadata: Any) -> Usage:
    """Read usageMetadata; output includes thoughts, input includes cached tokens.

    promptTokenCount already counts cachedContentTokenCount. Tokens of tool-use
    prompts (toolUsePromptTokenCount) are input too.
    """
    if not isinstance(metadata, dict):
        return Usage()
    thoughts = token_count(metadata.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=token_count(metadata.get("promptTokenCount"))
        + token_count(metadata.get("toolUsePromptTokenCount")),
        output_tokens=token_count(metadata.get("candidatesTokenCount")) + thoughts,
        cached_tokens=token_count(metadata.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        reported=True,
    )


def finish_reason_for(reason: Any, *, has_tool_calls: bool, truncated: bool) -> str:
    """Map a Gemini finishReason to an OpenAI finish_reason.

    Values without a mapping become tool_calls when the candidate holds function
    calls, length when the output reached the token limit, and stop otherwise.
    Unknown values are logged once per value.
    """
    mapped = FINISH_REASONS.get(reason)
    if mapped == "stop" and has_tool_calls:
        return "tool_calls"
    if mapped is not None:
        return mapped
    if (
        isinstance(reason, str)
        and reason not in UNMAPPED_FINISH_REASONS
        and reason not in _unknown_finish_reasons
    ):
        _unknown_finish_reasons.add(reason)
        logger.warning(
            "unknown Gemini finishReason %s", reason, extra={"provider": "gemini"}
        )
    if has_tool_calls:
        return "tool_calls"
    return "length" if truncated else "stop"


def safety_block(source: str, reason: Any, ratings: Any) -> dict[str, Any]:
    """Return the safety_block carrier: who blocked, why, and the blocked categories."""
    categories = [
        str(rating.get("category"))
        for rating in ratings or []
        if isinstance(rating, dict) and rating.get("blocked") is True
    ]
    return {"source": source, "reason": str(reason or ""), "categories": categories}


@dataclass
class _Parts:
    """The canonical pieces of one candidate's parts."""

    texts: list[str]
    thoughts: list[str]
    tool_calls: list[dict[str, Any]]
    signature: str | None


def read_parts(parts: Any) -> _Parts:
    """Split Gemini parts into text, thought text, tool calls and a text signature."""
    result = _Parts([], [], [], None)
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        call = part.get("functionCall")
        if isinstance(call, dict):
            result.tool_calls.append(_tool_call(call, part.get("thoughtSignature")))
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            (result.thoughts if part.get("thought") is True else result.texts).append(
                text
            )
        if isinstance(part.get("thoughtSignature"), str) and part["thoughtSignature"]:
            result.signature = part["thoughtSignature"]
    return result


def _tool_call(call: dict[str, Any], signature: Any) -> dict[str, Any]:
    return {
        "id": tool_call_id(signature),
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }


def parse_generate_response(
    parsed: Any, provider: str, max_tokens: int | None
) -> ChatResult:
    """Translate a GenerateContentResponse into an OpenAI chat.completion."""
    if not isinstance(parsed, dict):
        raise ProviderProtocolError(
            f"Provider {provider} returned an answer that is not a JSON object."
        )
    usage = usage_from_gemini(parsed.get("usageMetadata"))
    candidates = parsed.get("candidates")
    if isinstance(candidates, list) and candidates:
        choices = [
            _choice(candidate, position, usage, max_tokens)
            for position, candidate in enumerate(candidates)
            if isinstance(candidate, dict)
        ]
    else:
        feedback = parsed.get("promptFeedback") or {}
        if not isinstance(feedback, dict) or not feedback.get("blockReason"):
            raise ProviderProtocolError(
                f"Provider {provider} returned no candidates and no block reason."
            )
        choices = [_prompt_blocked_choice(feedback, provider)]

    completion = {
        "id": _completion_id(parsed.get("responseId")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(parsed.get("modelVersion") or ""),
        "choices": choices,
        "usage": usage.to_openai(),
    }
    return ChatResult(body=completion, usage=usage)


def _choice(
    candidate: dict[str, Any], position: int, usage: Usage, max_tokens: int | None
) -> dict[str, Any]:
    content = candidate.get("content")
    pieces = read_parts(content.get("parts") if isinstance(content, dict) else None)
    truncated = bool(max_tokens) and usage.output_tokens >= (max_tokens or 0)
    finish_reason = finish_reason_for(
        candidate.get("finishReason"),
        has_tool_calls=bool(pieces.tool_calls),
        truncated=truncated,
    )
    has_text = bool(pieces.texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(pieces.texts)
        if has_text or not (pieces.tool_calls or finish_reason == "content_filter")
        else None,
    }
    if pieces.tool_calls:
        message["tool_calls"] = pieces.tool_calls
    if pieces.thoughts:
        message["reasoning_content"] = "".join(pieces.thoughts)
    if pieces.signature:
        message["thinking_blocks"] = [
            thinking_block("".join(pieces.thoughts), pieces.signature)
        ]

    choice: dict[str, Any] = {
        "index": candidate.get("index", position),
        "message": message,
        "finish_reason": finish_reason,
        "logprobs": None,
    }
    if finish_reason == "content_filter":
        block = safety_block(
            "candidate", candidate.get("finishReason"), candidate.get("safetyRatings")
        )
        choice["safety_block"] = block
        _log_block(block)
    return choice


def _prompt_blocked_choice(feedback: dict[str, Any], provider: str) -> dict[str, Any]:
    block = safety_block("prompt", feedback.get("blockReason"), feedback.get("safetyRatings"))
    _log_block(block)
    return {
        "index": 0,
        "message": {"role": "assistant", "content": None},
        "finish_reason": "content_filter",
        "logprobs": None,
        "safety_block": block,
    }


def _log_block(block: dict[str, Any]) -> None:
    logger.info(
        "Gemini blocked the %s: reason %s, categories %s",
        block["source"],
        block["reason"],
        ",".join(block["categories"]) or "none",
        extra={"provider": "gemini"},
    )


def _completion_id(response_id: Any) -> str:
    if isinstance(response_id, str) and response_id:
        return "chatcmpl-" + response_id
    return "chatcmpl-" + uuid.uuid4().hex


def google_error(status: int, body: bytes, provider: str) -> ProviderStatusError:
    """Return the error for a Google API error body (`{error: {code, message, status}}`).

    An invalid API key is reported by Gemini as HTTP 400 with reason
    API_KEY_INVALID; it is mapped to 401 so it reads as the credential problem it is.
    """
    error = _error_object(body)
    message = str(error.get("message") or "no error message")
    status_name = str(error.get("status") or "")
    reasons = {
        detail.get("reason")
        for detail in error.get("details") or []
        if isinstance(detail, dict)
    }
    if "API_KEY_INVALID" in reasons:
        status, error_type = 401, "authentication_error"
    else:
        error_type = GOOGLE_ERROR_TYPES.get(status_name) or ERROR_TYPES.get(
            status, "api_error"
        )
    return ProviderStatusError(
        f"Provider {provider} returned HTTP {status}: {message}",
        upstream_status=status,
        error_type=error_type,
    )


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return {"message": text or "no error message"}
    # Some Google endpoints wrap the error object in a one-element array.
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


@dataclass
class _Candidate:
    """Stream state of one candidate (one OpenAI choice)."""

    tool_count: int = 0
    finished: bool = False
    text_sent: bool = False
    thoughts: str = ""


class GeminiStreamDecoder(StreamDecoder):
    """Decode streamGenerateContent (alt=sse) events into chat.completion.chunk objects.

    Every event is a whole GenerateContentResponse. A functionCall part arrives
    complete, so each call is sent as a start delta (id, name, empty arguments)
    followed by one delta with all its arguments. The finish chunk of a candidate
    follows its finishReason; the usage-only chunk comes when the upstream closes,
    because Gemini streams have no end marker and repeat usage in every event.
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
        _log_block(block)
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
            call = _tool_call(part["functionCall"], part.get("thoughtSignature"))
            return self._tool_call(index, state, call)
        chunks: list[dict[str, Any]] = []
        text = part.get("text")
        thought = part.get("thought") is True
        if thought and isinstance(text, str) and text:
            state.thoughts += text
            chunks.append(self._chunk(index, {"reasoning_content": text}))
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            # Sent before the part's text so that the thinking block it closes is
            # still the open one; thought text already answered goes unrepeated.
            thoughts = "" if state.text_sent else state.thoughts
            block = thinking_block(thoughts, signature)
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
        arguments = {"index": position, "function": {"arguments": function["arguments"]}}
        return [
            self._chunk(index, {"tool_calls": [start]}),
            self._chunk(index, {"tool_calls": [arguments]}),
        ]

    def _finish_candidate(
        self, index: int, state: _Candidate, candidate: dict[str, Any]
    ) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
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
            _log_block(block)
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
