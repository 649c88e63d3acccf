"""Shared rewrites for vendors whose chat API is OpenAI-like but not OpenAI.

Such vendors (MiniMax, Zhipu GLM) differ from OpenAI in the same few ways. They accept
only auto and none as tool_choice and report usage inside the last choice chunk
instead of a separate usage chunk. They also have their own finish reasons and may
end a stream without `data: [DONE]`.
"""

import logging
from typing import Any

from nexus.engine.errors import InvalidRequestError, ProviderStatusError
from nexus.engine.providers.base import finish_reason_from
from nexus.engine.providers.openai import OpenAIStreamDecoder
from nexus.engine.sse import Event

logger = logging.getLogger(__name__)

CANONICAL_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "function_call",
}


def emulate_tool_choice(body: dict[str, Any]) -> None:
    """Rewrite tool_choice for a vendor that accepts only auto and none.

    A named choice offers only that tool. NOTE: required and named choices are sent as
    auto, so the model is asked but not forced to call a tool.
    """
    choice = body.get("tool_choice")
    if choice is None or choice in ("auto", "none"):
        return
    if choice == "required":
        body["tool_choice"] = "auto"
        return
    name = (
        (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    )
    if not isinstance(name, str):
        raise InvalidRequestError(
            "'tool_choice' must be auto, none, required or "
            "{type: function, function: {name}}.",
            param="tool_choice",
        )
    tools = [
        tool
        for tool in body.get("tools") or []
        if (tool.get("function") or {}).get("name") == name
    ]
    if not tools:
        raise InvalidRequestError(
            f"'tool_choice' names {name!r}, which is not in 'tools'.",
            param="tool_choice",
        )
    body["tools"] = tools
    body["tool_choice"] = "auto"


def map_finish_reasons(
    choices: Any, table: dict[str, str], failures: dict[str, int], provider: str
) -> None:
    """Map each choice's finish_reason through table in place.

    A value in failures means the vendor aborted generation. It raises an error with
    that HTTP status, so the response is not treated as complete.
    """
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict) or choice.get("finish_reason") is None:
            continue
        value = choice["finish_reason"]
        if value in failures:
            raise ProviderStatusError(
                f"Provider {provider} ended generation with finish_reason {value}.",
                upstream_status=failures[value],
                error_type="api_error",
            )
        message = choice.get("message") or choice.get("delta") or {}
        choice["finish_reason"] = finish_reason_from(
            table,
            value,
            provider=provider,
            has_tool_calls=bool(message.get("tool_calls")),
        )


class DialectStreamDecoder(OpenAIStreamDecoder):
    """Decode an OpenAI-like stream into canonical chunks.

    Finish reasons are mapped through finish_reasons, usage found in a choice chunk
    moves to its own usage-only chunk, and a choice that repeats the whole `message`
    in the last chunk keeps only an empty delta. A stream that ends without
    `[DONE]` counts as finished once a finish_reason arrived.
    """

    def __init__(
        self,
        provider: str,
        finish_reasons: dict[str, str],
        failures: dict[str, int] | None = None,
    ) -> None:
        super().__init__(provider)
        self.finish_reasons = finish_reasons
        self.failures = failures or {}
        self.saw_finish_reason = False

    def finish(self) -> list[dict[str, Any]]:
        chunks = super().finish()
        if self.saw_finish_reason:
            self.finished = True
        return chunks

    def _decode(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for chunk in super()._decode(events):
            chunks.extend(self.normalize(chunk))
        return chunks

    def normalize(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the canonical chunks for one vendor chunk."""
        choices = chunk.get("choices") or []
        for choice in choices:
            if isinstance(choice, dict) and "message" in choice:
                choice.pop("message")
                choice.setdefault("delta", {})
        map_finish_reasons(choices, self.finish_reasons, self.failures, self.provider)
        if any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
            self.saw_finish_reason = True
        if not choices or not chunk.get("usage"):
            return [chunk]
        usage = chunk.pop("usage")
        usage_chunk = {
            name: value for name, value in chunk.items() if name != "choices"
        }
        usage_chunk.update(choices=[], usage=usage)
        return [chunk, usage_chunk]
