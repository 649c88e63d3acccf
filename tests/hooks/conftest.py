import pytest

from apps.hooks.models import AllowedWebhookHost, Hook
from tests.support.factories import make_connection, make_model, make_tenant, unique


class Setup:
    """A tenant with OpenAI- and Anthropic-backed chat models and an embeddings model."""

    def __init__(self, fake_provider, gateway) -> None:
        openai_connection = make_connection(
            "openai", fake_provider.openai_base, region="eu-west-1"
        )
        anthropic_connection = make_connection(
            "anthropic", fake_provider.anthropic_base, region="us-east-1"
        )
        self.openai_connection = openai_connection
        self.anthropic_connection = anthropic_connection
        self.chat = make_model(openai_connection, "gpt-4o-mini").name
        self.claude = make_model(anthropic_connection, "claude-sonnet-4-5").name
        self.embed = make_model(
            openai_connection, "text-embedding-3-small", kind="embeddings"
        ).name
        self.tenant = make_tenant()
        self.org = self.tenant.org
        self.key = self.tenant.key
        self.gateway = gateway
        gateway.refresh()


class Policy:
    """Hooks of one test's organization; removed again when the test ends."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.rows: list = []

    def add(self, kind: str, stage: str = "request", **fields) -> Hook:
        options = fields.pop("options", {})
        hook = Hook(
            name=unique(kind),
            kind=kind,
            stage=stage,
            organization=self.setup.org,
            options=options,
            **fields,
        )
        hook.full_clean()
        hook.save()
        self.rows.append(hook)
        self.setup.gateway.refresh()
        return hook

    def allow_host(self, host: str) -> None:
        row, _ = AllowedWebhookHost.objects.get_or_create(
            host=host, defaults={"reason": "test peer"}
        )
        self.rows.append(row)
        self.setup.gateway.refresh()

    def clear(self) -> None:
        for row in reversed(self.rows):
            row.delete()
        self.rows.clear()
        self.setup.gateway.refresh()


@pytest.fixture
def setup(fake_provider, gateway, db_rows) -> Setup:
    return Setup(fake_provider, gateway)


@pytest.fixture
def policy(setup):
    policy = Policy(setup)
    yield policy
    policy.clear()
