import pytest

from tests.support.factories import make_connection, make_model, make_tenant


class Setup:
    """A tenant with chat, embeddings and Anthropic-backed models on the fake provider."""

    def __init__(self, fake_provider, gateway) -> None:
        openai_connection = make_connection("openai", fake_provider.openai_base)
        anthropic_connection = make_connection(
            "anthropic", fake_provider.anthropic_base
        )
        self.chat = make_model(
            openai_connection, "gpt-4o-mini", input_price="0.15", output_price="0.6"
        ).name
        self.claude = make_model(
            anthropic_connection,
            "claude-sonnet-4-5",
            input_price="3",
            output_price="15",
        ).name
        self.embed = make_model(
            openai_connection, "text-embedding-3-small", kind="embeddings"
        ).name
        self.tenant = make_tenant()
        self.key = self.tenant.key
        self.gateway = gateway
        gateway.refresh()


@pytest.fixture
def setup(fake_provider, gateway, db_rows) -> Setup:
    return Setup(fake_provider, gateway)
