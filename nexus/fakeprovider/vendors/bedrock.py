"""Fake Amazon Bedrock Runtime: Converse, ConverseStream and InvokeModel embeddings.

Requests must carry a SigV4 ``Authorization`` header of the documented shape
(``AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/bedrock/aws4_request,
SignedHeaders=...;host;...;x-amz-date, Signature=<64 hex digits>``) and an
``X-Amz-Date`` header that matches the credential date. The expected key for this
vendor is the access key id. The signature itself is not recomputed, because the
fake does not know the secret key.

Errors carry their type in the ``x-amzn-ErrorType`` header and ``{"message": ...}``
in the body. Converse requests are checked the way Bedrock checks them: roles
alternate starting with user, every toolUse id of an assistant turn is answered by
exactly one toolResult block in the next user turn, toolConfig is present when the
history holds tool blocks, and image bytes are base64.

ConverseStream answers use the AWS event-stream framing (``vendors.eventstream``).
"""

import base64
import binascii
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import orjson
from aiohttp import web

from nexus.fakeprovider import embedding
from nexus.fakeprovider.reply import (
    Prompt,
    Reply,
    ToolSpec,
    compose_reply,
    content_text,
    count_words,
    placeholder_arguments,
    split_fixed,
    split_pieces,
    stable_id,
)
from nexus.fakeprovider.vendors.base import Call, Endpoint, Vendor, write_chunks
from nexus.fakeprovider.vendors.eventstream import event_frame

logger = logging.getLogger(__name__)

EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/(?P<service>[a-z0-9-]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


class BedrockVendor(Vendor):
    """Bedrock Runtime under ``/model/{modelId}/...``."""

    name: ClassVar[str] = "bedrock"
    request_id_header: ClassVar[str] = "x-amzn-RequestId"

    def endpoints(self) -> list[Endpoint]:
        """Return the Converse, ConverseStream and InvokeModel routes."""
        return [
            Endpoint("POST", r"/model/{model_id:.+}/converse", self.converse),
            Endpoint("POST", r"/model/{model_id:.+}/converse-stream", self.stream_call),
            Endpoint("POST", r"/model/{model_id:.+}/invoke", self.invoke),
        ]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Reject a missing or malformed SigV4 header, or an unexpected access key."""
        authorization = headers.get("Authorization", "")
        if not authorization:
            return self.error_response(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
        match = _AUTHORIZATION.match(authorization)
        amz_date = headers.get("X-Amz-Date", "")
        if match is None or not _AMZ_DATE.match(amz_date):
            return self.error_response(
                403,
                "IncompleteSignatureException",
                "Authorization header requires Credential, SignedHeaders and "
                "Signature, and X-Amz-Date must be set.",
            )
        signed = match.group("signed").split(";")
        if (
            match.group("service") != "bedrock"
            or match.group("date") != amz_date[:8]
            or "host" not in signed
            or "x-amz-date" not in signed
        ):
            return self.error_response(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature "
                "you provided.",
            )
        if expected_key is not None and match.group("key") != expected_key:
            return self.error_response(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return Bedrock's error body; the type travels in a header."""
        return {"message": message}

    def error_response(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> web.Response:
        """Return an error with its type in ``x-amzn-ErrorType``."""
        all_headers = {
            "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/"
            "com.amazon.bedrock/",
            **(headers or {}),
        }
        return super().error_response(status, error_type, message, all_headers, code)

    async def converse(self, call: Call) -> web.StreamResponse:
        """Return a Converse response."""
        problem = self._check_converse(call)
        if problem is not None:
            return problem
        reply = compose_reply(converse_prompt(call), forced_override(call))
        return self.json_response(converse_answer(reply))

    async def stream_call(self, call: Call) -> web.StreamResponse:
        """Return a ConverseStream response as event-stream frames."""
        problem = self._check_converse(call)
        if problem is not None:
            return problem
        reply = compose_reply(converse_prompt(call), forced_override(call))
        frames = [event_frame(kind, data) for kind, data in stream_events(reply)]
        headers = {
            "Content-Type": EVENT_STREAM_CONTENT_TYPE,
            self.request_id_header: "fake-request",
            **call.response_headers,
        }
        return await write_chunks(
            call.request,
            frames,
            headers=headers,
            chunk_delay=call.chunk_delay,
            close_after=call.close_after,
        )

    async def invoke(self, call: Call) -> web.StreamResponse:
        """Embed with a Titan (``inputText``) or Cohere (``texts``) body."""
        body = call.body
        model = call.request.match_info["model_id"]
        if not isinstance(body, dict):
            return self._invalid("Malformed input request, please reformat your input.")
        if model.startswith("amazon.titan-embed"):
            return self._titan(body)
        if model.startswith("cohere.embed"):
            return self._cohere(body)
        return self._invalid(f"The fake has no InvokeModel support for {model}.")

    def _titan(self, body: dict[str, Any]) -> web.Response:
        text = body.get("inputText")
        dimensions = body.get("dimensions", embedding.DEFAULT_DIMENSIONS)
        if not isinstance(text, str) or set(body) - {
            "inputText",
            "dimensions",
            "normalize",
            "embeddingTypes",
        }:
            return self._invalid("Malformed input request: inputText is required.")
        if (
            not isinstance(dimensions, int)
            or not 1 <= dimensions <= embedding.MAX_DIMENSIONS
        ):
            return self._invalid("Malformed input request: invalid dimensions.")
        vector = embedding.embed_text(text, dimensions)
        return self.json_response(
            {
                "embedding": vector,
                "embeddingsByType": {"float": vector},
                "inputTextTokenCount": count_words(text),
            }
        )

    def _cohere(self, body: dict[str, Any]) -> web.Response:
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self._invalid("Malformed input request: texts is required.")
        if body.get("input_type") not in (
            "search_document",
            "search_query",
            "classification",
            "clustering",
        ):
            return self._invalid("Malformed input request: input_type is required.")
        dimensions = body.get("output_dimension", embedding.DEFAULT_DIMENSIONS)
        vectors = [embedding.embed_text(text, dimensions) for text in texts]
        return self.json_response(
            {
                "id": stable_id("emb_", *texts),
                "embeddings": {"float": vectors},
                "response_type": "embeddings_by_type",
                "texts": texts,
            }
        )

    def _check_converse(self, call: Call) -> web.Response | None:
        body = call.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._invalid("The messages field is required.")
        problem = converse_problem(body)
        return self._invalid(problem) if problem else None

    def _invalid(self, message: str) -> web.Response:
        return self.error_response(400, "ValidationException", message)


def converse_problem(body: dict[str, Any]) -> str | None:
    """Return Bedrock's validation message for a malformed Converse body, or None."""
    messages = body["messages"]
    has_tool_blocks = False
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            return (
                "A conversation must alternate between user and assistant roles "
                "and start with a user message."
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"The content field in messages.{index} is empty."
        for block in content:
            problem = _block_problem(block, index)
            if problem:
                return problem
            has_tool_blocks = (
                has_tool_blocks or "toolUse" in block or "toolResult" in block
            )
        if expected == "assistant":
            problem = _answer_problem(messages, index)
            if problem:
                return problem
    if has_tool_blocks and not body.get("toolConfig"):
        return (
            "The toolConfig field must be defined when using toolUse and toolResult "
            "content blocks."
        )
    return None


def _block_problem(block: Any, index: int) -> str | None:
    if not isinstance(block, dict) or len(block) != 1:
        return f"Each content block in messages.{index} must hold exactly one member."
    if "text" in block and (
        not isinstance(block["text"], str) or not block["text"].strip()
    ):
        return f"The text field in messages.{index}.content is blank."
    if "toolUse" in block and not isinstance(block["toolUse"].get("input"), dict):
        return f"The toolUse input in messages.{index}.content must be an object."
    if "image" in block:
        image = block["image"]
        if image.get("format") not in IMAGE_FORMATS:
            return f"The image format in messages.{index}.content is invalid."
        try:
            base64.b64decode(image["source"]["bytes"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            return f"The image bytes in messages.{index}.content are not base64."
    return None


def _answer_problem(messages: list[Any], index: int) -> str | None:
    """Check that every toolUse of assistant turn index is answered once next."""
    tool_ids = [
        block["toolUse"].get("toolUseId")
        for block in messages[index]["content"]
        if "toolUse" in block
    ]
    if not tool_ids:
        return None
    answer_index = index + 1
    if answer_index >= len(messages):
        return None
    results = [
        block["toolResult"].get("toolUseId")
        for block in messages[answer_index]["content"]
        if isinstance(block, dict) and "toolResult" in block
    ]
    duplicates = sorted({item for item in results if results.count(item) > 1})
    if duplicates:
        return (
            f"The toolResult blocks at messages.{answer_index}.content contain "
            f"duplicate Ids: {', '.join(duplicates)}"
        )
    missing = [item for item in tool_ids if item not in results]
    if missing:
        return (
            f"Expected toolResult blocks at messages.{answer_index}.content for the "
            f"following Ids: {', '.join(missing)}"
        )
    return None


def forced_override(call: Call) -> dict[str, Any] | None:
    """Return the reply override, calling the tool that toolChoice forces by name.

    A model forced to call a tool calls it whatever the prompt, so an unscripted
    request with ``toolChoice: {tool: {name}}`` is answered with that call.
    """
    if call.reply_override is not None:
        return call.reply_override
    config = call.body.get("toolConfig") or {}
    name = ((config.get("toolChoice") or {}).get("tool") or {}).get("name")
    for tool in config.get("tools") or []:
        spec = tool.get("toolSpec") or {}
        if name and spec.get("name") == name:
            schema = (spec.get("inputSchema") or {}).get("json") or {}
            return {
                "tool_calls": [
                    {"name": name, "arguments": placeholder_arguments(schema)}
                ]
            }
    return None


def converse_prompt(call: Call) -> Prompt:
    """Read the reply-relevant parts of a Converse body."""
    body = call.body
    messages = body["messages"]
    texts = [_blocks_text(body.get("system") or [])]
    user_texts = []
    for message in messages:
        text = _blocks_text(message["content"])
        texts.append(text)
        texts.extend(
            _blocks_text(block["toolResult"].get("content") or [])
            for block in message["content"]
            if "toolResult" in block
        )
        if message["role"] == "user" and text:
            user_texts.append(text)
    last = messages[-1] if messages else {}
    tools = tuple(
        ToolSpec(spec["name"], (spec.get("inputSchema") or {}).get("json") or {})
        for tool in (body.get("toolConfig") or {}).get("tools") or []
        if isinstance(spec := tool.get("toolSpec"), dict) and "name" in spec
    )
    extra = body.get("additionalModelRequestFields") or {}
    thinking = extra.get("thinking") or {}
    return Prompt(
        model=call.request.match_info["model_id"],
        last_user_text=user_texts[-1] if user_texts else "",
        input_words=sum(count_words(text) for text in texts),
        ends_with_user_text=last.get("role") == "user"
        and bool(_blocks_text(last.get("content") or [])),
        tools=tools,
        wants_reasoning=thinking.get("type") == "enabled" or "reasoningConfig" in extra,
        max_output_tokens=(body.get("inferenceConfig") or {}).get("maxTokens"),
        tool_call_id_prefix="tooluse_",
    )


def _blocks_text(blocks: list[Any]) -> str:
    return content_text(
        [
            {"type": "text", "text": block["text"]}
            for block in blocks
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        ]
    )


def converse_usage(reply: Reply) -> dict[str, int]:
    """Return Converse usage; inputTokens excludes cache reads and writes."""
    usage = reply.usage
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens
    result = {
        "inputTokens": max(uncached, 0),
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        result["cacheReadInputTokens"] = usage.cached_tokens
    if usage.cache_creation_tokens:
        result["cacheWriteInputTokens"] = usage.cache_creation_tokens
    return result


def content_blocks(reply: Reply) -> list[dict[str, Any]]:
    """Return the answer's content blocks: reasoning, then text or toolUse blocks."""
    blocks: list[dict[str, Any]] = []
    if reply.reasoning:
        signature = stable_id("sig_", reply.reasoning)
        text = {"text": reply.reasoning, "signature": signature}
        blocks.append({"reasoningContent": {"reasoningText": text}})
    if reply.text or not reply.tool_calls:
        blocks.append({"text": reply.text})
    for tool_call in reply.tool_calls:
        tool_use = {
            "toolUseId": tool_call.id,
            "name": tool_call.name,
            "input": orjson.loads(tool_call.arguments),
        }
        blocks.append({"toolUse": tool_use})
    return blocks


def converse_answer(reply: Reply) -> dict[str, Any]:
    """Return a Converse answer body."""
    return {
        "output": {"message": {"role": "assistant", "content": content_blocks(reply)}},
        "stopReason": STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
        "usage": converse_usage(reply),
        "metrics": {"latencyMs": 12},
    }


def stream_events(reply: Reply) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (event type, payload) pairs of a ConverseStream answer in order."""
    yield "messageStart", {"role": "assistant"}
    for index, block in enumerate(content_blocks(reply)):
        yield from _block_events(index, block)
    stop_reason = STOP_REASONS.get(reply.finish_reason, reply.finish_reason)
    yield "messageStop", {"stopReason": stop_reason}
    yield "metadata", {"usage": converse_usage(reply), "metrics": {"latencyMs": 12}}


def _block_events(index: int, block: dict[str, Any]) -> Iterator[tuple[str, dict]]:
    def delta(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "contentBlockDelta", {"contentBlockIndex": index, "delta": data}

    if "toolUse" in block:
        tool_use = block["toolUse"]
        start = {
            "toolUse": {"toolUseId": tool_use["toolUseId"], "name": tool_use["name"]}
        }
        yield "contentBlockStart", {"contentBlockIndex": index, "start": start}
        for piece in split_fixed(orjson.dumps(tool_use["input"]).decode()):
            yield delta({"toolUse": {"input": piece}})
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]["reasoningText"]
        for piece in split_pieces(reasoning["text"]):
            yield delta({"reasoningContent": {"text": piece}})
        yield delta({"reasoningContent": {"signature": reasoning["signature"]}})
    else:
        for piece in split_pieces(block["text"]):
            yield delta({"text": piece})
    yield "contentBlockStop", {"contentBlockIndex": index}
