"""Cache keys and semantic scopes derived from a canonical chat request.

The exact key covers the tenant scope, the purge generation, the resolved target and
the request body with every field that can change the response. A field is left out
only when it is listed in IGNORED_FIELDS, so a field added to the API later changes
the key until someone decides it does not.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from nexus.engine.canonical import ChatRequest, text_of

KEY_VERSION = 1

# Request fields that never change the answer: caller identity and tags, transport
# (stream, stream_options), storage and prompt-cache routing hints. `model` is
# replaced by the resolved target.
IGNORED_FIELDS = frozenset(
    {
        "model",
        "user",
        "metadata",
        "stream",
        "stream_options",
        "store",
        "safety_identifier",
        "prompt_cache_key",
    }
)

SYSTEM_ROLES = frozenset({"system", "developer"})
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class KeyContext:
    """The requester's tenant scope and the resolved target of a request."""

    # Tenant scope such as "org:4/project:7"; responses are shared only inside it.
    scope: str
    # Purge generation of the scope; a purge bumps it so older entries are unreachable.
    generation: int
    model: str
    upstream_model: str
    connection_id: int


def normalise(value: Any) -> Any:
    """Return value with integral floats as ints, so 0 and 0.0 give the same key."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {name: normalise(item) for name, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


def answer_fields(request: ChatRequest) -> dict[str, Any]:
    """Return the request fields that change the response, normalised.

    Absent and null fields are the same; a single stop string equals a one-item
    list. Omitted sampling settings stay omitted, because the provider's default
    (temperature 1 on OpenAI) is not the same as an explicit 0.
    """
    fields = {
        name: normalise(value)
        for name, value in request.body.items()
        if name not in IGNORED_FIELDS and value is not None
    }
    if isinstance(fields.get("stop"), str):
        fields["stop"] = [fields["stop"]]
    return fields


def answer_extensions(request: ChatRequest) -> dict[str, Any]:
    """Return the request extensions that provider codecs read: the plain JSON ones.

    Other objects, such as the Responses API's encoding context with its response id
    and timestamps, only shape the caller's wire format and are left out.
    """
    return {
        name: normalise(value)
        for name, value in request.extensions.items()
        if value is None or isinstance(value, (dict, list, str, int, float, bool))
    }


def passthrough_only(request: ChatRequest) -> bool:
    """Return whether the request has features only an unchanged passthrough serves.

    Such a request (a Responses API built-in tool, say) cannot be cached, because
    capturing its answer requires the translated path.
    """
    return any(
        getattr(value, "native_only", None) for value in request.extensions.values()
    )


def _digest(material: dict[str, Any]) -> str:
    encoded = orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def _context(context: KeyContext) -> dict[str, Any]:
    return {
        "v": KEY_VERSION,
        "scope": context.scope,
        "gen": context.generation,
        "target": [context.model, context.upstream_model, context.connection_id],
    }


def exact_key(context: KeyContext, request: ChatRequest) -> str:
    """Return the exact-cache key (SHA-256 hex) of the request in its context."""
    material = _context(context)
    material["body"] = answer_fields(request)
    material["extensions"] = answer_extensions(request)
    return _digest(material)


@dataclass(frozen=True)
class SemanticQuery:
    """The part of a request the semantic cache embeds, and the scope it searches."""

    scope: str
    text: str


def semantic_query(context: KeyContext, request: ChatRequest) -> SemanticQuery:
    """Split the request into the scope hash and the last user text to embed.

    The scope covers the tenant, target, system prompt, every earlier turn and every
    other answer-changing field, so only the wording of the last user message may
    differ between a request and the cached answer it is served.
    """
    fields = answer_fields(request)
    messages = fields.pop("messages", [])
    system = [m for m in messages if m.get("role") in SYSTEM_ROLES]
    turns = [m for m in messages if m.get("role") not in SYSTEM_ROLES]
    material = _context(context)
    material.update(
        system=system,
        history=turns[:-1],
        params=fields,
        extensions=answer_extensions(request),
    )
    last = turns[-1] if turns else {}
    text = _SPACES.sub(" ", text_of(last.get("content"))).strip()
    return SemanticQuery(scope=_digest(material), text=text)


@dataclass(frozen=True)
class SemanticRules:
    """Eligibility rules of the semantic cache."""

    include_tools: bool = False
    max_temperature: float = 1.0


def semantic_exclusion(request: ChatRequest, rules: SemanticRules) -> str | None:
    """Return why the request is not eligible for the semantic cache, or None.

    Tools, several choices, log probabilities and high temperatures are excluded by
    default, and so is a conversation whose last turn is not plain user text.
    """
    body = request.body
    if (body.get("tools") or body.get("functions")) and not rules.include_tools:
        return "tools"
    if (body.get("n") or 1) > 1:
        return "several_choices"
    if body.get("logprobs") or body.get("top_logprobs"):
        return "logprobs"
    temperature = body.get("temperature")
    # An omitted temperature is the OpenAI default of 1.
    if (1.0 if temperature is None else temperature) > rules.max_temperature:
        return "temperature"
    last = request.messages[-1]
    if last.get("role") != "user":
        return "last_turn_not_user"
    content = last.get("content")
    if isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") != "text" for part in content
    ):
        return "non_text_content"
    if not text_of(content).strip():
        return "empty_prompt"
    return None
