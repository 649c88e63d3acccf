"""Gemini responses, streams and errors in canonical (OpenAI chat) form.

The Gemini API and Gemini models on Vertex AI respond in the same shape, so both
codecs decode here. gemini_request builds the requests and gemini_stream decodes
streams.

Canonical carriers for Gemini features that OpenAI chat has no field for:

- A thought signature on a functionCall part travels inside the tool call id
  (`call_<hex>__ts__<base64url of the signature>`), so it returns with the tool call
  in the next turn from any client, including Anthropic SDK callers.
- A thought signature on a text part travels in `thinking_blocks` as a thinking
  block whose signature is `gemini:<signature>`. Thought text goes to
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
from nexus.engine.providers.base import ERROR_TYPES

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
# candidate contains functionCall parts.
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
    """Read usageMetadata, where output includes thoughts and input cached tokens.

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

    Values without a mapping become tool_calls when the candidate contains function
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
            result.tool_calls.append(
                tool_call_from_part(call, part.get("thoughtSignature"))
            )
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            (result.thoughts if part.get("thought") is True else result.texts).append(
                text
            )
        if isinstance(part.get("thoughtSignature"), str) and part["thoughtSignature"]:
            result.signature = part["thoughtSignature"]
    return result


def tool_call_from_part(call: dict[str, Any], signature: Any) -> dict[str, Any]:
    """Return the OpenAI tool call for a functionCall and its thought signature."""
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
            f"Provider {provider} returned a response that is not a JSON object."
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
        "id": completion_id(parsed.get("responseId")),
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
        log_block(block)
    return choice


def _prompt_blocked_choice(feedback: dict[str, Any], provider: str) -> dict[str, Any]:
    block = safety_block(
        "prompt", feedback.get("blockReason"), feedback.get("safetyRatings")
    )
    log_block(block)
    return {
        "index": 0,
        "message": {"role": "assistant", "content": None},
        "finish_reason": "content_filter",
        "logprobs": None,
        "safety_block": block,
    }


def log_block(block: dict[str, Any]) -> None:
    """Log a safety block with its reason and categories, never the content."""
    # TODO: the audit event has no field for a provider's block reason, so the reason
    # is kept only in the response body (safety_block) and in this log line.
    logger.info(
        "Gemini blocked the %s: reason %s, categories %s",
        block["source"],
        block["reason"],
        ",".join(block["categories"]) or "none",
        extra={"provider": "gemini"},
    )


def completion_id(response_id: Any) -> str:
    if isinstance(response_id, str) and response_id:
        return "chatcmpl-" + response_id
    return "chatcmpl-" + uuid.uuid4().hex


def google_error(status: int, body: bytes, provider: str) -> ProviderStatusError:
    """Return the error for a Google API error body (`{error: {code, message, status}}`).

    An invalid API key is reported by Gemini as HTTP 400 with reason
    API_KEY_INVALID. It is mapped to 401 so it reads as the credential problem it is.
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
