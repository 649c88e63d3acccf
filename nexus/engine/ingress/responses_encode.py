"""Canonical chat results encoded as OpenAI Responses API objects and stream events.

A complete result becomes a Response object whose output contains a reasoning item
(when the message has reasoning_content), a message item with one output_text part,
and one function_call item per tool call. A stream becomes the documented event
sequence: response.created and response.in_progress, then per output item
output_item.added, its part and delta events and output_item.done, then
response.completed (or response.incomplete when the token limit or a content filter
cut the answer). Every event carries a sequence_number, and the stream ends without
a `[DONE]` line.
"""

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, Usage
from nexus.engine.errors import NexusError
from nexus.engine.ingress.base import StreamEncoder
from nexus.engine.sse import encode_event

EXTENSION_KEY = "responses"

# Request fields a Response object repeats, with the value it shows when absent.
ECHOED_FIELDS = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "truncation": "disabled",
    "user": None,
}


@dataclass
class ResponsesContext:
    """A Responses API request as the encoders and the response store need it.

    input_items are every input item the model saw: a previous response's input and
    output first, then this request's input. final is the finished Response object,
    set by the encoder once the result is complete.
    """

    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    store: bool = True
    response_id: str = field(default_factory=lambda: "resp_" + uuid.uuid4().hex)
    created_at: int = field(default_factory=lambda: int(time.time()))
    # Request features only an OpenAI upstream can serve (built-in tools, file ids).
    native_only: list[str] = field(default_factory=list)
    finish_reason: Any = None
    final: dict[str, Any] | None = None


def context_of(request: ChatRequest) -> ResponsesContext:
    """Return the Responses context the ingress attached to a decoded request."""
    return request.extensions[EXTENSION_KEY]


def response_object(
    context: ResponsesContext,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
) -> dict[str, Any]:
    """Return a Response object with the request's echoed fields."""
    body = context.body
    response: dict[str, Any] = {
        "id": context.response_id,
        "object": "response",
        "created_at": context.created_at,
        "status": status,
        "error": None,
        "incomplete_details": _incomplete_details(status, context),
        "model": model,
        "output": output,
        "reasoning": _reasoning_config(body.get("reasoning")),
        "store": context.store,
        "usage": responses_usage(usage) if usage is not None else None,
    }
    for name, default in ECHOED_FIELDS.items():
        value = body.get(name)
        response[name] = default if value is None else value
    if status in ("completed", "incomplete"):
        response["completed_at"] = int(time.time())
    return response


def responses_usage(usage: Usage) -> dict[str, Any]:
    """Return the Responses API usage object."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def status_for(finish_reason: Any) -> str:
    """Return the Response status for a canonical finish reason."""
    return (
        "incomplete" if finish_reason in ("length", "content_filter") else "completed"
    )


def encode_result(result: ChatResult, request: ChatRequest) -> dict[str, Any]:
    """Return the Response object for a complete canonical chat result."""
    context = context_of(request)
    choices = result.body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    status = status_for(choice.get("finish_reason"))
    context.finish_reason = choice.get("finish_reason")
    item_status = "incomplete" if status == "incomplete" else "completed"

    output = []
    if message.get("reasoning_content"):
        output.append(reasoning_item(new_id("rs"), message["reasoning_content"]))
    tool_calls = message.get("tool_calls") or []
    text = message.get("content")
    if isinstance(text, str) and (text or not tool_calls):
        output.append(message_item(new_id("msg"), text, item_status))
    elif text is None and not tool_calls:
        output.append(message_item(new_id("msg"), "", item_status))
    for call in tool_calls:
        function = call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                "completed",
            )
        )
    response = response_object(context, request.model, status, output, result.usage)
    context.final = response
    return response


def new_id(prefix: str) -> str:
    """Return a new output item id such as msg_<hex>."""
    return f"{prefix}_{uuid.uuid4().hex}"


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [output_text_part(text)],
    }


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


@dataclass
class _Item:
    """An output item being streamed: its position, kind and text so far."""

    index: int
    kind: str
    item_id: str
    text: str = ""
    call_id: str = ""
    name: str = ""


class ResponsesStreamEncoder(StreamEncoder):
    """Turn canonical chunks into Responses API stream events.

    Reasoning and text each stream as one item at a time. A tool call opens its own
    function_call item, keyed by the canonical tool call index. That item stays open
    until the stream ends, because argument deltas of several calls may interleave.
    """

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self.context = context_of(request)
        self.sequence = 0
        self.started = False
        self.items: list[_Item] = []
        self.open: _Item | None = None
        self.calls: dict[int, _Item] = {}
        self.done: dict[int, dict[str, Any]] = {}
        self.finish_reason: Any = None
        self.usage: Usage | None = None

    def encode(self, chunk: dict[str, Any]) -> bytes:
        out = self._start()
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out += self._append("reasoning", delta["reasoning_content"])
            if delta.get("content"):
                out += self._append("message", delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def finish(self) -> bytes:
        out = self._start() + self._close_open()
        for item in sorted(self.calls.values(), key=lambda item: item.index):
            out += self._close_call(item)
        status = status_for(self.finish_reason)
        output = [self.done[index] for index in sorted(self.done)]
        self.context.finish_reason = self.finish_reason
        response = response_object(
            self.context, self.request.model, status, output, self.usage or Usage()
        )
        self.context.final = response
        return out + self._event(f"response.{status}", {"response": response})

    def error(self, error: NexusError) -> bytes:
        out = self._start()
        out += self._event(
            "error",
            {"code": error.code, "message": error.message, "param": error.param},
        )
        output = [self.done[index] for index in sorted(self.done)]
        response = response_object(
            self.context, self.request.model, "failed", output, self.usage
        )
        response["error"] = {"code": error.code, "message": error.message}
        return out + self._event("response.failed", {"response": response})

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        shell = response_object(
            self.context, self.request.model, "in_progress", [], None
        )
        return self._event("response.created", {"response": shell}) + self._event(
            "response.in_progress", {"response": shell}
        )

    def _append(self, kind: str, text: str) -> bytes:
        out = b""
        if self.open is None or self.open.kind != kind:
            out += self._close_open()
            out += self._open_text(kind)
        item = self.open
        assert item is not None
        item.text += text
        event = (
            "response.output_text.delta"
            if kind == "message"
            else ("response.reasoning_text.delta")
        )
        data: dict[str, Any] = {
            **self._position(item),
            "content_index": 0,
            "delta": text,
        }
        if kind == "message":
            data["logprobs"] = []
        return out + self._event(event, data)

    def _open_text(self, kind: str) -> bytes:
        prefix = "msg" if kind == "message" else "rs"
        item = _Item(len(self.items), kind, new_id(prefix))
        self.items.append(item)
        self.open = item
        if kind == "message":
            started = {**message_item(item.item_id, "", "in_progress"), "content": []}
            part = output_text_part("")
        else:
            started = {**reasoning_item(item.item_id, ""), "content": []}
            part = {"type": "reasoning_text", "text": ""}
        return self._added(item, started) + self._event(
            "response.content_part.added",
            {**self._position(item), "content_index": 0, "part": part},
        )

    def _close_open(self) -> bytes:
        item = self.open
        if item is None:
            return b""
        self.open = None
        position = {**self._position(item), "content_index": 0}
        if item.kind == "message":
            status = (
                "incomplete"
                if status_for(self.finish_reason) == "incomplete"
                else ("completed")
            )
            final = message_item(item.item_id, item.text, status)
            part = final["content"][0]
            out = self._event(
                "response.output_text.done",
                {**position, "text": item.text, "logprobs": []},
            )
        else:
            final = reasoning_item(item.item_id, item.text)
            part = final["content"][0]
            out = self._event(
                "response.reasoning_text.done", {**position, "text": item.text}
            )
        out += self._event("response.content_part.done", {**position, "part": part})
        return out + self._item_done(item, final)

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        item = self.calls.get(index)
        if item is None:
            out += self._close_open()
            item = _Item(
                len(self.items),
                "function_call",
                new_id("fc"),
                call_id=str(call.get("id") or new_id("call")),
                name=str(function.get("name") or ""),
            )
            self.items.append(item)
            self.calls[index] = item
            started = function_call_item(
                item.item_id, item.call_id, item.name, "", "in_progress"
            )
            out += self._added(item, started)
        arguments = function.get("arguments")
        if arguments:
            item.text += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                {**self._position(item), "delta": arguments},
            )
        return out

    def _close_call(self, item: _Item) -> bytes:
        out = self._event(
            "response.function_call_arguments.done",
            {**self._position(item), "name": item.name, "arguments": item.text},
        )
        final = function_call_item(
            item.item_id, item.call_id, item.name, item.text, "completed"
        )
        return out + self._item_done(item, final)

    def _added(self, item: _Item, started: dict[str, Any]) -> bytes:
        return self._event(
            "response.output_item.added", {"output_index": item.index, "item": started}
        )

    def _item_done(self, item: _Item, final: dict[str, Any]) -> bytes:
        self.done[item.index] = final
        return self._event(
            "response.output_item.done", {"output_index": item.index, "item": final}
        )

    def _position(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.item_id, "output_index": item.index}

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        payload = {"type": kind, **data, "sequence_number": self.sequence}
        self.sequence += 1
        return encode_event(orjson.dumps(payload), kind)


def _incomplete_details(status: str, context: ResponsesContext) -> dict | None:
    if status != "incomplete":
        return None
    if context.finish_reason == "content_filter":
        return {"reason": "content_filter"}
    return {"reason": "max_output_tokens"}


def _reasoning_config(reasoning: Any) -> dict[str, Any]:
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    return {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
