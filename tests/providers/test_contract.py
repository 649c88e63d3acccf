"""The shared provider contract for the first-class OpenAI and Anthropic codecs."""

from tests.providers.contract import ProviderContract


class TestOpenAIContract(ProviderContract):
    provider_type = "openai"
    upstream_model = "gpt-4o-mini"
    embeddings_model = "text-embedding-3-small"
    chat_path = "/chat/completions"


class TestAnthropicContract(ProviderContract):
    provider_type = "anthropic"
    upstream_model = "claude-sonnet-4-5"
    chat_path = "/v1/messages"
    error_statuses = (400, 401, 429, 500, 503, 529)

    def base_url(self, fake_provider) -> str:
        return fake_provider.anthropic_base
