"""The facts about one request that route matching, rules and splits read."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Characters per token for the prompt estimate: about 4 for English text with the
# BPE tokenizers of OpenAI and Anthropic models. An estimate, never an exact count.
CHARS_PER_TOKEN = 4
# Tokens each message adds for its role and separators (an estimate).
TOKENS_PER_MESSAGE = 4


@dataclass
class RequestFacts:
    """What routing may know about a request; prompt size is computed on first use.

    `headers` has lowercase names. `metadata` is the request body's `metadata`
    object (OpenAI chat), string values only. `user` is the body's `user` field, which
    the Anthropic ingress fills from `metadata.user_id`.
    """

    model: str
    requested_model: str = ""
    ingress: str = ""
    key_id: int | None = None
    key: str = ""
    org_id: int | None = None
    org: str = ""
    project_id: int | None = None
    project: str = ""
    user: str = ""
    stream: bool = False
    max_tokens: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    body: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def prompt_tokens(self) -> int:
        """Estimate the prompt's tokens from its text length."""
        characters = 0
        messages = self.body.get("messages")
        count = 0
        if isinstance(messages, list):
            count = len(messages)
            for message in messages:
                if isinstance(message, dict):
                    characters += _text_length(message.get("content"))
                    characters += _text_length(message.get("tool_calls"))
        characters += _text_length(self.body.get("tools"))
        characters += _text_length(self.body.get("input"))
        return characters // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * count

    @cached_property
    def has_tools(self) -> bool:
        tools = self.body.get("tools")
        return isinstance(tools, list) and bool(tools)

    @cached_property
    def has_images(self) -> bool:
        messages = self.body.get("messages")
        if not isinstance(messages, list):
            return False
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list) and any(
                isinstance(part, dict) and part.get("type") == "image_url"
                for part in content
            ):
                return True
        return False

    @cached_property
    def json_schema(self) -> bool:
        response_format = self.body.get("response_format")
        return (
            isinstance(response_format, dict)
            and response_format.get("type") == "json_schema"
        )

    def capabilities_needed(self) -> frozenset[str]:
        """Return the target capabilities this request uses: tools, vision, json_schema."""
        needed = set()
        if self.has_tools:
            needed.add("tools")
        if self.has_images:
            needed.add("vision")
        if self.json_schema:
            needed.add("json_schema")
        return frozenset(needed)

    def value(self, name: str) -> Any:
        """Return the fact called name; `header.<name>` and `metadata.<name>` look inside.

        Returns None for an absent header, metadata entry or unset fact.
        """
        if name.startswith("header."):
            return self.headers.get(name[7:].lower())
        if name.startswith("metadata."):
            return self.metadata.get(name[9:])
        if name not in FACT_NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def subject(self, spec: str) -> str:
        """Return the value a split or sticky choice hashes, by its spec.

        Specs: key, user, org, project, header:<name>, metadata:<name>. A request
        without a user falls back to its key, so it still lands in a stable arm.
        """
        if spec == "key":
            return f"key:{self.key_id}"
        if spec == "user":
            return f"user:{self.user}" if self.user else f"key:{self.key_id}"
        if spec == "org":
            return f"org:{self.org_id}"
        if spec == "project":
            return f"project:{self.project_id}"
        kind, _, name = spec.partition(":")
        if kind == "header":
            return f"header:{self.headers.get(name.lower(), '')}"
        if kind == "metadata":
            return f"metadata:{self.metadata.get(name, '')}"
        raise KeyError(spec)


FACT_NAMES = frozenset(
    {
        "model",
        "requested_model",
        "ingress",
        "key_id",
        "key",
        "org_id",
        "org",
        "project_id",
        "project",
        "user",
        "stream",
        "max_tokens",
        "tags",
        "prompt_tokens",
        "has_tools",
        "has_images",
        "json_schema",
    }
)

SUBJECT_KINDS = ("key", "user", "org", "project")


def valid_subject(spec: Any) -> bool:
    """Return whether spec names a subject that `RequestFacts.subject` understands."""
    if not isinstance(spec, str):
        return False
    if spec in SUBJECT_KINDS:
        return True
    kind, _, name = spec.partition(":")
    return kind in ("header", "metadata") and bool(name)


def request_metadata(body: Mapping[str, Any]) -> dict[str, str]:
    """Return the string entries of the body's `metadata` object."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    return {str(k): v for k, v in metadata.items() if isinstance(v, str)}


def requested_max_tokens(body: Mapping[str, Any]) -> int | None:
    """Return `max_completion_tokens` or `max_tokens` of the body, if an integer."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _text_length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_part_length(part) for part in value)
    if isinstance(value, dict):
        return sum(_text_length(item) for item in value.values())
    return len(str(value))


def _part_length(part: Any) -> int:
    if isinstance(part, dict):
        if part.get("type") in ("image_url", "input_audio", "file"):
            # Binary parts are priced by the provider, not by their base64 length.
            return 0
        return _text_length(part.get("text")) + _text_length(part.get("function"))
    return _text_length(part)
