"""OpenAI-compatible vendors as rows of data, served by one subclass of the OpenAI codec.

Each CompatibleVendor row gives a vendor's default base URL, its auth header and the
small rewrites its chat API needs. Parameters are renamed, dropped or limited to an
allow list, rejected message fields are removed and value ranges are clamped. A row
also sets the n limit, tool and response_format support, whether stream_options is
sent, and the fields that carry reasoning text. `openai_compatible` is the row for
any other OpenAI-format server. It has no default base URL and takes its auth header
and rewrites from the connection's options (OpenAICompatibleOptions). The row type
and the rewrite functions are in nexus.engine.providers.compatible_rules.

Rules come from each vendor's public API reference. A vendor whose limits could not
be confirmed has fewer rewrites, and its upstream rejects what it does not accept.
"""

import logging
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import orjson

from nexus.engine.canonical import ChatRequest, ChatResult, EmbeddingsRequest, Usage
from nexus.engine.errors import InvalidRequestError, ProviderStatusError
from nexus.engine.http import UpstreamRequest
from nexus.engine.providers.base import ERROR_TYPES, OptionsError, StreamDecoder
from nexus.engine.providers.compatible_rules import (
    CompatibleVendor,
    ModelRule,
    check_n,
    check_tools,
    clamp_ranges,
    error_fields,
    nested_usage,
    normalize_reasoning,
    rewrite_response_format,
    without_fields,
)
from nexus.engine.providers.openai import OpenAIAdapter
from nexus.engine.providers.openai_dialect import (
    CANONICAL_FINISH_REASONS,
    DialectStreamDecoder,
    map_finish_reasons,
)
from nexus.engine.snapshot import ConnectionEntry

logger = logging.getLogger(__name__)

# Mistral's chat request schema rejects every field it does not define with HTTP 422
# ("Extra inputs are not permitted"), stream_options and message `name` included.
MISTRAL_PARAMETERS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
        "reasoning_effort",
    }
)

VENDORS: tuple[CompatibleVendor, ...] = (
    CompatibleVendor(
        name="deepseek",
        base_url="https://api.deepseek.com",
        reasoning_fields=("reasoning_content",),
        model_rules=(
            # deepseek-reasoner rejects logprobs and top_logprobs with HTTP 400 and
            # ignores the sampling parameters, so all six are left out.
            ModelRule(
                r"^deepseek-reasoner",
                frozenset(
                    {
                        "logprobs",
                        "top_logprobs",
                        "temperature",
                        "top_p",
                        "presence_penalty",
                        "frequency_penalty",
                    }
                ),
            ),
        ),
    ),
    CompatibleVendor(
        name="moonshot",
        base_url="https://api.moonshot.ai/v1",
        # Kimi and moonshot-v1 models take temperature and top_p in [0, 1] and n up to 5.
        ranges={"temperature": (0.0, 1.0), "top_p": (0.0, 1.0)},
        max_n=5,
        reasoning_fields=("reasoning_content",),
    ),
    CompatibleVendor(
        name="mistral",
        base_url="https://api.mistral.ai/v1",
        rename={"max_completion_tokens": "max_tokens", "seed": "random_seed"},
        allowed=MISTRAL_PARAMETERS,
        message_drop=frozenset({"name", "refusal", "annotations", "audio"}),
        # Streams carry usage in their last chunk without being asked.
        stream_options=False,
        thinking_chunks=True,
        embeddings=True,
        # Mistral's embeddings request calls the OpenAI `dimensions` output_dimension.
        embeddings_rename={"dimensions": "output_dimension"},
    ),
    CompatibleVendor(
        name="groq",
        base_url="https://api.groq.com/openai/v1",
        # Groq rejects these, and n other than 1, with HTTP 400.
        drop=frozenset({"logprobs", "top_logprobs", "logit_bias"}),
        message_drop=frozenset({"name"}),
        max_n=1,
        # NOTE: Groq reports stream usage in the last chunk's x_groq.usage, so the
        # stream_options request field is not sent.
        stream_options=False,
        usage_fields=("x_groq",),
        reasoning_fields=("reasoning",),
    ),
    CompatibleVendor(
        name="fireworks",
        base_url="https://api.fireworks.ai/inference/v1",
        reasoning_fields=("reasoning_content",),
        embeddings=True,
    ),
    CompatibleVendor(
        # NOTE: no documented parameter limits were found for Together's chat API,
        # so requests pass unchanged.
        name="together",
        base_url="https://api.together.xyz/v1",
        embeddings=True,
    ),
    CompatibleVendor(
        name="perplexity",
        base_url="https://api.perplexity.ai",
        rename={"max_completion_tokens": "max_tokens"},
        # Sonar has no function calling, and its structured output is JSON Schema
        # only; json_object requests are sent as a schema for any object.
        supports_tools=False,
        response_formats=frozenset({"text", "json_schema"}),
        # NOTE: Perplexity documents no stream_options, so it is not sent; streams
        # are billed from the usage its chunks carry.
        stream_options=False,
    ),
    CompatibleVendor(
        name="xai",
        base_url="https://api.x.ai/v1",
        reasoning_fields=("reasoning_content",),
        model_rules=(
            # Grok reasoning models reject presence_penalty, frequency_penalty and stop.
            ModelRule(
                r"^grok-(?:3-mini|4|code)(?!.*non-reasoning)",
                frozenset({"presence_penalty", "frequency_penalty", "stop"}),
            ),
        ),
    ),
    CompatibleVendor(
        # NOTE: the router forwards to many inference providers with their own limits,
        # so requests pass unchanged.
        name="huggingface",
        base_url="https://router.huggingface.co/v1",
    ),
)

OPENAI_COMPATIBLE = CompatibleVendor(
    name="openai_compatible",
    base_url="",
    reasoning_fields=("reasoning_content", "reasoning"),
    embeddings=True,
)


@dataclass(frozen=True)
class OpenAICompatibleOptions:
    """Options of an openai_compatible connection.

    auth_header names the header that carries the credential and auth_scheme the
    word before it ("" sends the bare credential). stream_options sets whether the
    server accepts `stream_options.include_usage`. drop_params lists top-level
    parameters the server rejects.
    """

    auth_header: str = "authorization"
    auth_scheme: str = "Bearer"
    stream_options: bool = True
    drop_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.auth_header, str) or not self.auth_header:
            raise ValueError(
                f"auth_header must be a non-empty string, got {self.auth_header!r}"
            )
        if not isinstance(self.auth_scheme, str):
            raise ValueError(f"auth_scheme must be a string, got {self.auth_scheme!r}")
        if not isinstance(self.stream_options, bool):
            raise ValueError(
                f"stream_options must be true or false, got {self.stream_options!r}"
            )
        params = self.drop_params
        if not isinstance(params, (list, tuple)) or not all(
            isinstance(name, str) for name in params
        ):
            raise ValueError(f"drop_params must be a list of strings, got {params!r}")
        object.__setattr__(self, "drop_params", tuple(params))


class CompatibleAdapter(OpenAIAdapter):
    """The OpenAI codec with one vendor row's auth header and rewrites."""

    vendor: ClassVar[CompatibleVendor]

    def __init__(self, connection: ConnectionEntry) -> None:
        super().__init__(connection)
        if not self.base_url:
            raise OptionsError(
                f"Provider type {self.name} has no default base URL; set the "
                "connection's base_url to the server's API root, such as "
                "https://llm.example.com/v1."
            )

    def auth_headers(self) -> dict[str, str]:
        """Return the credential in the vendor's header and scheme."""
        credential = self.connection.credential
        if not credential:
            return {}
        scheme = self.vendor.auth_scheme
        value = f"{scheme} {credential}" if scheme else credential
        return {self.vendor.auth_header: value}

    def rewrite_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply the vendor row's rewrites to an outgoing chat body.

        Raises InvalidRequestError (400) for tools on a vendor without function
        calling and for n above the vendor's limit, which the vendor would reject.
        """
        vendor = self.vendor
        check_tools(body, vendor)
        rewrite_response_format(body, vendor)
        for old, new in vendor.rename.items():
            if old in body:
                value = body.pop(old)
                body.setdefault(new, value)
        clamp_ranges(body, vendor)
        check_n(body, vendor)

        dropped = set(vendor.drop)
        for rule in vendor.model_rules:
            if rule.matches(str(body.get("model", ""))):
                dropped |= rule.drop
        if not vendor.stream_options:
            dropped.add("stream_options")
        if vendor.allowed is not None:
            dropped |= set(body) - vendor.allowed
        removed = sorted(name for name in dropped if name in body)
        for name in removed:
            del body[name]
        if removed:
            logger.debug(
                "left out parameters %s that the vendor rejects",
                removed,
                extra={"provider": self.connection.name},
            )
        if vendor.message_drop:
            body["messages"] = [
                without_fields(message, vendor.message_drop)
                for message in body["messages"]
            ]
        return body

    def parse_chat_response(self, body: bytes, request: ChatRequest) -> ChatResult:
        """Parse an OpenAI chat completion, moving reasoning text to reasoning_content."""
        result = super().parse_chat_response(body, request)
        parsed = result.body
        for choice in parsed["choices"]:
            if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                normalize_reasoning(choice["message"], self.vendor)
        map_finish_reasons(
            parsed["choices"], CANONICAL_FINISH_REASONS, {}, self.connection.name
        )
        if not result.usage.reported:
            nested = nested_usage(parsed, self.vendor)
            if nested is not None:
                parsed["usage"] = nested
                result.usage = Usage.from_openai(nested)
        return result

    def chat_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return CompatibleStreamDecoder(self.connection.name, self.vendor)

    def build_embeddings_request(
        self, request: EmbeddingsRequest, upstream_model: str
    ) -> UpstreamRequest:
        """Return the OpenAI embeddings request, or raise 400 for a chat-only vendor."""
        if not self.vendor.embeddings:
            raise InvalidRequestError(
                f"Provider type {self.name} does not serve embeddings."
            )
        upstream = super().build_embeddings_request(request, upstream_model)
        if self.vendor.embeddings_rename:
            payload = orjson.loads(upstream.body)
            for old, new in self.vendor.embeddings_rename.items():
                if old in payload:
                    payload[new] = payload.pop(old)
            upstream.body = orjson.dumps(payload)
        return upstream

    def parse_error(self, status: int, body: bytes) -> ProviderStatusError:
        """Read the vendor's error body, including FastAPI-style `detail` lists."""
        message, error_type = error_fields(body)
        return ProviderStatusError(
            f"Provider {self.connection.name} returned HTTP {status}: {message}",
            upstream_status=status,
            error_type=error_type or ERROR_TYPES.get(status, "api_error"),
        )


class OpenAICompatibleAdapter(CompatibleAdapter):
    """Any OpenAI-format server; rewrites come from the connection's options."""

    name = "openai_compatible"
    default_base_url = ""
    requires_base_url = True
    supports_embeddings = True
    options_class = OpenAICompatibleOptions
    options: OpenAICompatibleOptions
    vendor = OPENAI_COMPATIBLE

    def __init__(self, connection: ConnectionEntry) -> None:
        super().__init__(connection)
        options = self.options
        self.vendor = replace(
            OPENAI_COMPATIBLE,
            auth_header=options.auth_header.lower(),
            auth_scheme=options.auth_scheme,
            stream_options=options.stream_options,
            drop=frozenset(options.drop_params),
        )
        self.accepts_stream_options = options.stream_options


class CompatibleStreamDecoder(DialectStreamDecoder):
    """Decode a compatible vendor's stream into canonical chunks.

    Reasoning fields become reasoning_content, usage nested in vendor objects moves
    to the chunk, and usage inside a choice chunk moves to its own usage-only chunk.
    """

    def __init__(self, provider: str, vendor: CompatibleVendor) -> None:
        super().__init__(provider, CANONICAL_FINISH_REASONS)
        self.vendor = vendor

    def normalize(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and isinstance(choice.get("delta"), dict):
                normalize_reasoning(choice["delta"], self.vendor)
        if not chunk.get("usage"):
            nested = nested_usage(chunk, self.vendor)
            if nested is not None:
                chunk["usage"] = nested
                self.usage.merge(Usage.from_openai(nested))
        return super().normalize(chunk)


def adapter_class(vendor: CompatibleVendor) -> type[CompatibleAdapter]:
    """Return the provider type class of one vendor row."""
    class_name = "".join(part.title() for part in vendor.name.split("_")) + "Adapter"
    return type(
        class_name,
        (CompatibleAdapter,),
        {
            "__module__": __name__,
            "__doc__": f"The {vendor.name} chat API, an OpenAI-compatible vendor row.",
            "name": vendor.name,
            "vendor": vendor,
            "default_base_url": vendor.base_url,
            "accepts_stream_options": vendor.stream_options,
            "supports_embeddings": vendor.embeddings,
        },
    )


COMPATIBLE_ADAPTERS: tuple[type[CompatibleAdapter], ...] = (
    *(adapter_class(vendor) for vendor in VENDORS),
    OpenAICompatibleAdapter,
)
