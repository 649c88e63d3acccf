"""Response hooks on complete answers and on streams.

A stream is filtered on a sliding window: text of each channel (answer text,
reasoning, each tool call's arguments) is held back until it is more than the
window behind the newest text, and a match that crosses the release point holds
the release back to the match's start. A value split across chunks is therefore
seen whole before any part of it reaches the caller. A block raises the error,
which ends the stream with an error event in the caller's format.
"""

import copy
from dataclasses import dataclass, field
from typing import Any

from nexus.engine.canonical import ChatResult
from nexus.engine.hooks.base import HookContext, Segment
from nexus.engine.hooks.pipeline import HookRecord, Pipeline, StageOutcome
from nexus.engine.hooks.segments import apply_redactions, result_segments, write_back
from nexus.engine.stages import ResponseFilter

ChannelKey = tuple[str, int]


@dataclass
class _Choice:
    """The held-back text of one choice, by channel, and the channel now growing."""

    buffers: dict[ChannelKey, str] = field(default_factory=dict)
    active: ChannelKey | None = None


class ResponseHookFilter(ResponseFilter):
    """Run the response-stage hooks of a pipeline on one answer."""

    def __init__(self, pipeline: Pipeline, context: HookContext) -> None:
        self.pipeline = pipeline
        self.context = context
        self.window = max(pipeline.stream_window(), 1)
        self.records: dict[str, HookRecord] = {}
        self.decision = "approve"
        self.choices: dict[int, _Choice] = {}
        self.template: dict[str, Any] = {}

    def filter_result(self, result: ChatResult) -> ChatResult:
        segments = result_segments(result)
        if not segments:
            return result
        outcome = self._run(segments)
        write_back(result, segments, outcome.texts)
        return result

    def filter_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.template:
            self.template = {
                name: chunk[name]
                for name in ("id", "object", "created", "model")
                if name in chunk
            }
        choices = chunk.get("choices")
        if not choices:
            return self.flush() + [chunk]
        before: list[dict[str, Any]] = []
        kept = []
        for choice in choices:
            choice = self._filter_choice(choice, before)
            if choice["delta"] or choice.get("finish_reason") is not None:
                kept.append(choice)
        if not kept and "usage" not in chunk:
            return before
        return before + [{**chunk, "choices": kept}]

    def flush(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index, state in self.choices.items():
            out.extend(self._flush_choice(index, state))
        return out

    def _filter_choice(self, choice: dict[str, Any], before: list) -> dict[str, Any]:
        index = choice.get("index", 0)
        state = self.choices.setdefault(index, _Choice())
        delta = dict(choice.get("delta") or {})
        for name in ("reasoning_content", "content"):
            piece = delta.pop(name, None)
            if isinstance(piece, str) and piece:
                released = self._feed(index, state, (name, 0), piece, before)
                if released:
                    delta[name] = released
            elif piece is not None and name == "content" and "role" in delta:
                delta[name] = piece
        if delta.get("tool_calls"):
            delta["tool_calls"] = self._filter_tool_calls(
                index, state, delta["tool_calls"], before
            )
        if choice.get("finish_reason") is not None:
            before.extend(self._flush_choice(index, state))
        return {**choice, "delta": delta}

    def _filter_tool_calls(
        self, index: int, state: _Choice, calls: list, before: list
    ) -> list:
        filtered = []
        for call in calls:
            call = copy.deepcopy(call)
            function = call.get("function") or {}
            piece = function.get("arguments")
            key = ("tool", call.get("index", 0))
            if isinstance(piece, str) and piece:
                function["arguments"] = self._feed(index, state, key, piece, before)
            elif state.active != key:
                before.extend(self._switch(index, state, key))
            filtered.append(call)
        return filtered

    def _feed(
        self, index: int, state: _Choice, key: ChannelKey, piece: str, before: list
    ) -> str:
        before.extend(self._switch(index, state, key))
        state.buffers[key] = state.buffers.get(key, "") + piece
        return self._release(state, key, final=False)

    def _switch(
        self, index: int, state: _Choice, key: ChannelKey
    ) -> list[dict[str, Any]]:
        """Release all of the previous channel when the model moves to another one."""
        previous, state.active = state.active, key
        if previous is None or previous == key or not state.buffers.get(previous):
            return []
        return [
            self._chunk(index, previous, self._release(state, previous, final=True))
        ]

    def _flush_choice(self, index: int, state: _Choice) -> list[dict[str, Any]]:
        out = []
        for key in list(state.buffers):
            if state.buffers[key]:
                text = self._release(state, key, final=True)
                if text:
                    out.append(self._chunk(index, key, text))
        state.active = None
        return out

    def _release(self, state: _Choice, key: ChannelKey, *, final: bool) -> str:
        text = state.buffers.get(key, "")
        if not text or (not final and len(text) <= self.window):
            return ""
        kind = {"content": "output", "reasoning_content": "reasoning"}.get(
            key[0], "tool_arguments"
        )
        outcome = self._run([Segment(kind, text, "assistant")])
        cut = len(text) if final else len(text) - self.window
        for redaction in sorted(outcome.redactions, key=lambda item: -item.start):
            if redaction.start < cut < redaction.end:
                cut = redaction.start
        state.buffers[key] = text[cut:]
        inside = [redaction for redaction in outcome.redactions if redaction.end <= cut]
        return apply_redactions(text[:cut], inside)

    def _run(self, segments: list[Segment]) -> StageOutcome:
        outcome = self.pipeline.run_sync("response", self.context, segments)
        for record in outcome.records:
            if record.hook in self.records:
                self.records[record.hook].merge(record)
            else:
                self.records[record.hook] = record
        if outcome.decision.label != "approve" and self.decision != "block":
            self.decision = outcome.decision.label
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def _chunk(self, index: int, key: ChannelKey, text: str) -> dict[str, Any]:
        if key[0] == "tool":
            delta: dict[str, Any] = {
                "tool_calls": [{"index": key[1], "function": {"arguments": text}}]
            }
        else:
            delta = {key[0]: text}
        chunk = dict(self.template)
        chunk.setdefault("object", "chat.completion.chunk")
        chunk["choices"] = [{"index": index, "delta": delta, "finish_reason": None}]
        return chunk
