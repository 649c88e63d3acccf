"""Provider types by name; callers dispatch through here, never on the name."""

from nexus.engine.providers.anthropic import AnthropicAdapter
from nexus.engine.providers.azure import AzureOpenAIAdapter
from nexus.engine.providers.base import ProviderAdapter
from nexus.engine.providers.bedrock import BedrockAdapter
from nexus.engine.providers.cohere import CohereAdapter
from nexus.engine.providers.compatible import COMPATIBLE_ADAPTERS
from nexus.engine.providers.gemini import GeminiAdapter
from nexus.engine.providers.glm import GLMAdapter
from nexus.engine.providers.minimax import MiniMaxAdapter
from nexus.engine.providers.openai import OpenAIAdapter
from nexus.engine.providers.replicate import ReplicateAdapter
from nexus.engine.providers.vertex import VertexAdapter
from nexus.engine.providers.voyage import VoyageAdapter
from nexus.engine.snapshot import ConnectionEntry

PROVIDER_TYPES: dict[str, type[ProviderAdapter]] = {
    adapter.name: adapter
    for adapter in (
        OpenAIAdapter,
        AnthropicAdapter,
        GeminiAdapter,
        VertexAdapter,
        AzureOpenAIAdapter,
        BedrockAdapter,
        CohereAdapter,
        MiniMaxAdapter,
        GLMAdapter,
        ReplicateAdapter,
        VoyageAdapter,
        *COMPATIBLE_ADAPTERS,
    )
}


def provider_choices() -> list[tuple[str, str]]:
    """Return (name, name) pairs for form and model choices."""
    return [(name, name) for name in sorted(PROVIDER_TYPES)]


def build_adapter(connection: ConnectionEntry) -> ProviderAdapter:
    """Return the codec for a connection; raise KeyError for an unknown type."""
    return PROVIDER_TYPES[connection.provider_type](connection)
