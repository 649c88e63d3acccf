"""Keys reach shared connections and their own organization's, never another's."""

import anthropic
import openai
import pytest

from apps.routing.models import Route
from tests.support.factories import make_connection, make_model, make_tenant, unique

FAILURE = {"status": 503, "error": {"type": "server_error", "message": "down"}}


class Orgs:
    """Org A and org B, each with a key and a model on its own connection, and a shared model.

    Every connection has its own credential, so the fake provider's requests show
    which connection served them.
    """

    def __init__(self, fake_provider, gateway) -> None:
        self.a = make_tenant()
        self.b = make_tenant()
        shared = make_connection("openai", fake_provider.openai_base, "sk-shared")
        own_a = make_connection(
            "openai", fake_provider.openai_base, "sk-org-a", organization=self.a.org
        )
        own_b = make_connection(
            "openai", fake_provider.openai_base, "sk-org-b", organization=self.b.org
        )
        claude_b = make_connection(
            "anthropic",
            fake_provider.anthropic_base,
            "sk-org-b-claude",
            organization=self.b.org,
        )
        self.shared = make_model(shared, "gpt-4o-mini").name
        self.model_a = make_model(own_a, "gpt-4o-mini").name
        self.model_b = make_model(own_b, "gpt-4o-mini").name
        self.claude_b = make_model(claude_b, "claude-sonnet-4-5").name
        self.gateway = gateway
        self.fake = fake_provider
        gateway.refresh()

    def openai_client(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.gateway.url}/v1", api_key=self.a.key, max_retries=0
        )

    def anthropic_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.gateway.url, api_key=self.a.key, max_retries=0
        )

    def credentials_used(self) -> list[str]:
        """Return the credential of every upstream request, in order."""
        return [
            request.headers.get("authorization") or request.headers.get("x-api-key", "")
            for request in self.fake.requests
        ]


@pytest.fixture
def orgs(fake_provider, gateway, db_rows) -> Orgs:
    return Orgs(fake_provider, gateway)


def chat(client: openai.OpenAI, model: str):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )


def test_own_and_shared_models_serve(orgs):
    client = orgs.openai_client()

    chat(client, orgs.model_a)
    chat(client, orgs.shared)

    assert orgs.credentials_used() == ["Bearer sk-org-a", "Bearer sk-shared"]


@pytest.mark.parametrize("name", ["model_b", "claude_b"])
def test_chat_other_org_model_not_found(orgs, name):
    with pytest.raises(openai.NotFoundError) as caught:
        chat(orgs.openai_client(), getattr(orgs, name))

    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found"
    assert orgs.fake.requests == []


def test_other_org_model_answers_like_unknown(orgs):
    with pytest.raises(openai.NotFoundError) as unknown:
        chat(orgs.openai_client(), "no-such-model")
    with pytest.raises(openai.NotFoundError) as foreign:
        chat(orgs.openai_client(), orgs.model_b)

    expected = unknown.value.body["message"].replace("no-such-model", orgs.model_b)
    assert foreign.value.body["message"] == expected
    assert foreign.value.body["type"] == unknown.value.body["type"]


def test_messages_other_org_model_not_found(orgs):
    with pytest.raises(anthropic.NotFoundError) as caught:
        orgs.anthropic_client().messages.create(
            model=orgs.claude_b,
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
        )

    assert caught.value.status_code == 404
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert orgs.fake.requests == []


def test_count_tokens_other_org_not_found(orgs):
    client = orgs.anthropic_client()
    messages = [{"role": "user", "content": "hi"}]

    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model=orgs.claude_b, messages=messages)
    counted = client.messages.count_tokens(model=orgs.shared, messages=messages)

    assert counted.input_tokens > 0


def test_embeddings_of_other_org_model_is_not_found(orgs, fake_provider):
    connection_b = make_connection(
        "openai", fake_provider.openai_base, "sk-org-b", organization=orgs.b.org
    )
    embed_b = make_model(connection_b, "text-embedding-3-small", kind="embeddings")
    orgs.gateway.refresh()

    with pytest.raises(openai.NotFoundError) as caught:
        orgs.openai_client().embeddings.create(model=embed_b.name, input="hi")

    assert caught.value.body["code"] == "model_not_found"
    assert orgs.fake.requests == []


def test_model_list_hides_other_org_models(orgs):
    names = {model.id for model in orgs.openai_client().models.list()}

    assert orgs.model_a in names
    assert orgs.shared in names
    assert orgs.model_b not in names
    assert orgs.claude_b not in names


def test_anthropic_model_list_hides_other_org_models(orgs):
    names = {model.id for model in orgs.anthropic_client().models.list()}

    assert orgs.shared in names
    assert orgs.claude_b not in names


def test_retrieve_other_org_model_is_not_found(orgs):
    client = orgs.openai_client()

    assert client.models.retrieve(orgs.model_a).id == orgs.model_a
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve(orgs.model_b)

    assert caught.value.body["code"] == "model_not_found"


def test_anthropic_retrieve_other_org_model_is_not_found(orgs):
    with pytest.raises(anthropic.NotFoundError):
        orgs.anthropic_client().models.retrieve(orgs.claude_b)


def make_fallback(orgs: Orgs, targets: list[str]) -> None:
    route = Route(
        name=unique("route"),
        model=orgs.shared,
        config={"strategy": "fallback", "targets": targets},
    )
    route.save()
    orgs.gateway.refresh()


def test_fallback_never_reaches_other_org_connection(orgs):
    make_fallback(orgs, [orgs.shared, orgs.model_b, orgs.model_a])
    orgs.fake.enqueue("/v1/chat/completions", FAILURE)

    chat(orgs.openai_client(), orgs.shared)

    assert orgs.credentials_used() == ["Bearer sk-shared", "Bearer sk-org-a"]


def test_route_skips_other_org_fallback(orgs):
    make_fallback(orgs, [orgs.shared, orgs.model_b])
    orgs.fake.enqueue("/v1/chat/completions", FAILURE)

    with pytest.raises(openai.InternalServerError):
        chat(orgs.openai_client(), orgs.shared)

    assert orgs.credentials_used() == ["Bearer sk-shared"]


def test_route_of_other_org_targets_only(orgs):
    make_fallback(orgs, [orgs.model_b])

    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat(orgs.openai_client(), orgs.shared)

    assert caught.value.body["code"] == "no_allowed_target"
    assert orgs.fake.requests == []
