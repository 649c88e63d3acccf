"""Token estimates: the prompt before the upstream call, the output of a cut-off answer.

Prompts are counted with the BPE encoding of the model's family, by the Rust
tokenizer of the `bpe-openai` package, which ships its encoding files and so never
downloads. Models outside the OpenAI families get the o200k_base count plus a
margin, because no local tokenizer fits them. Encodings load in a worker thread on
first use.
"""

import asyncio
import importlib.util
import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, EmbeddingsRequest, text_of

# Tokens per message for role and separators, and for priming the reply, as OpenAI
# documents for its chat models.
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3
# NOTE: images and audio are not tokenized; each part is charged this flat estimate,
# which is above OpenAI's 765 tokens for a 1024x1024 high-detail image.
MEDIA_PART_TOKENS = 1000
# Margin on the o200k_base count for models with no local tokenizer.
FOREIGN_MARGIN = 1.25
# Texts longer than this are counted in a worker thread instead of on the event loop.
THREAD_THRESHOLD_CHARS = 64 * 1024
# Piece size for the pure-Python tokenizer, which rejects 1,000,000 characters.
PIECE_CHARS = 100_000

_FAMILY_PREFIXES = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada", "cl100k_base"),
)

_counters: dict[str, Callable[[str], int]] = {}
_load_lock = threading.Lock()


@dataclass(frozen=True)
class Count:
    """A token count and whether a tokenizer of the model's own family produced it."""

    tokens: int
    exact: bool


def encoding_name(upstream_model: str) -> tuple[str, bool]:
    """Return the encoding to count a model with, and whether it is the model's own."""
    name = upstream_model.rsplit("/", 1)[-1].lower()
    for prefix, encoding in _FAMILY_PREFIXES:
        if name.startswith(prefix):
            return encoding, True
    return "o200k_base", False


def _rust_counter(name: str) -> Callable[[str], int] | None:
    # NOTE: `import bpe_openai` (0.1.4) parses every rank table into Python dicts,
    # about 1.3 s and 160 MB RSS measured on the development machine, so the
    # package's Rust extension is loaded on its own: 0.1 s and about 90 MB.
    module = sys.modules.get("bpe_openai._bindings")
    if module is None:
        spec = importlib.util.find_spec("bpe_openai")
        if spec is None or spec.origin is None:
            return None
        paths = sorted(Path(spec.origin).parent.glob("_bindings*.so"))
        if not paths:
            return None
        binding = importlib.util.spec_from_file_location(
            "bpe_openai._bindings", paths[0]
        )
        if binding is None or binding.loader is None:
            return None
        module = importlib.util.module_from_spec(binding)
        binding.loader.exec_module(module)
    factory = getattr(module, "tokenizer_for_encoding", None)
    if factory is None:
        return None
    return factory(name).count


def _python_counter(name: str) -> Callable[[str], int]:
    import bpe_openai

    encoding = bpe_openai.get_encoding(name)

    def count(text: str) -> int:
        # The wrapper rejects texts of 1,000,000 characters and more; a cut inside
        # a word adds at most a token per piece.
        return sum(
            len(encoding.encode_ordinary(text[start : start + PIECE_CHARS]))
            for start in range(0, len(text), PIECE_CHARS)
        )

    return count


def _load(name: str) -> Callable[[str], int]:
    with _load_lock:
        if name not in _counters:
            _counters[name] = _rust_counter(name) or _python_counter(name)
        return _counters[name]


async def load_counter(name: str) -> Callable[[str], int]:
    """Return the token counter of an encoding, loading it in a worker thread once."""
    counter = _counters.get(name)
    if counter is None:
        counter = await asyncio.to_thread(_load, name)
    return counter


def preload(names: tuple[str, ...]) -> None:
    """Load encodings now (blocking), so the first request does not wait for them."""
    for name in names:
        _load(name)


async def count_texts(upstream_model: str, texts: list[str]) -> Count:
    """Count the tokens of texts for a model, off the event loop when they are long."""
    name, exact = encoding_name(upstream_model)
    count = await load_counter(name)
    joined = "\n".join(text for text in texts if text)
    if len(joined) > THREAD_THRESHOLD_CHARS:
        tokens = await asyncio.to_thread(count, joined)
    else:
        tokens = count(joined)
    if not exact:
        tokens = math.ceil(tokens * FOREIGN_MARGIN)
    return Count(tokens, exact)


def prompt_texts(request: ChatRequest) -> tuple[list[str], int]:
    """Return the texts of a chat prompt and the tokens it costs beyond them."""
    texts: list[str] = []
    extra = REPLY_OVERHEAD
    for message in request.messages:
        extra += MESSAGE_OVERHEAD
        content = message.get("content")
        texts.append(text_of(content))
        if isinstance(content, list):
            extra += MEDIA_PART_TOKENS * sum(
                1
                for part in content
                if isinstance(part, dict) and part.get("type") not in ("text", None)
            )
        if isinstance(message.get("name"), str):
            texts.append(message["name"])
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                texts.append(str(function.get("name") or ""))
                texts.append(str(function.get("arguments") or ""))
    if request.tools:
        texts.append(orjson.dumps(request.tools).decode())
    response_format = request.body.get("response_format")
    if isinstance(response_format, dict) and "json_schema" in response_format:
        texts.append(orjson.dumps(response_format["json_schema"]).decode())
    return texts, extra


async def prompt_tokens(upstream_model: str, request: Any) -> Count:
    """Estimate the input tokens of a chat or embeddings request."""
    if isinstance(request, EmbeddingsRequest):
        texts = [item for item in request.inputs if isinstance(item, str)]
        token_ids = sum(
            len(item) if isinstance(item, list) else 1
            for item in request.inputs
            if not isinstance(item, str)
        )
        count = await count_texts(upstream_model, texts)
        return Count(count.tokens + token_ids, count.exact)
    texts, extra = prompt_texts(request)
    count = await count_texts(upstream_model, texts)
    return Count(count.tokens + extra, count.exact)


def output_allowance(request: Any, default: int) -> tuple[int, bool]:
    """Return the output tokens a request may produce, and whether the caller set them.

    The allowance is max_completion_tokens or max_tokens (else `default`) times the
    number of choices; embeddings produce none.
    """
    if not isinstance(request, ChatRequest):
        return 0, True
    body = request.body
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    choices = max(1, int(body.get("n") or 1))
    if limit:
        return max(0, int(limit)) * choices, True
    return default * choices, False


def produced_text(chunks: list[dict[str, Any]]) -> str:
    """Return the text a stream produced so far: content, reasoning and tool calls."""
    parts: list[str] = []
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                _collect(delta, parts)
    return "".join(parts)


def result_text(body: dict[str, Any]) -> str:
    """Return the text of a complete response: content, reasoning and tool calls."""
    parts: list[str] = []
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            _collect(message, parts)
    return "".join(parts)


def _collect(message: dict[str, Any], parts: list[str]) -> None:
    for name in ("content", "reasoning_content", "refusal"):
        value = message.get(name)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.append(text_of(value))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(str(function.get("name") or ""))
            parts.append(str(function.get("arguments") or ""))
