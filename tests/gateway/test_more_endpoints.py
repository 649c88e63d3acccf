"""GET /v1/models/{id}, GET and DELETE /v1/responses/{id} and POST
/v1/messages/count_tokens, with the official OpenAI and Anthropic SDKs."""

import asyncio

import anthropic
import httpx
import openai
import pytest

from apps.providers.models import Model
from nexus.engine.ingress.anthropic import AnthropicIngress
from nexus.engine.quotas import estimate
from tests.support.factories import make_model, make_tenant, unique

WEATHER = {
    "name": "weather",
    "description": "Look up the weather of a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


@pytest.fixture
def claude_client(setup):
    return anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )


def stranger_client(setup) -> openai.OpenAI:
    """Return an OpenAI client whose key belongs to another organization."""
    stranger = make_tenant()
    setup.gateway.refresh()
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=stranger.key, max_retries=0
    )


def test_model_retrieve_returns_model_object(client, setup):
    model = client.models.retrieve(setup.chat)

    assert model.id == setup.chat
    assert model.object == "model"
    assert model.owned_by == "nexus"
    assert model.created == 0


def test_model_retrieve_accepts_alias(client, setup, db_rows):
    alias = unique("alias")
    Model.objects.filter(name=setup.chat).update(aliases=[alias])
    setup.gateway.refresh()

    model = client.models.retrieve(alias)

    assert model.id == alias


def test_model_id_with_slashes(client, setup, db_rows):
    connection = Model.objects.get(name=setup.chat).connection
    name = f"meta-llama/{unique('Llama-3-8b')}"
    make_model(connection, "gpt-4o-mini", name=name)
    setup.gateway.refresh()

    model = client.models.retrieve(name)

    assert model.id == name


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")

    error = caught.value.body
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "no-such-model" in error["message"]


def test_model_outside_allow_list_is_404(setup, db_rows):
    limited = make_tenant(allowed_models=[setup.chat])
    setup.gateway.refresh()
    client = openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=limited.key, max_retries=0
    )

    allowed = client.models.retrieve(setup.chat)
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve(setup.claude)

    assert allowed.id == setup.chat
    assert caught.value.body["code"] == "model_not_found"


def test_model_retrieve_in_anthropic_shape(claude_client, setup):
    model = claude_client.models.retrieve(setup.claude)

    assert model.type == "model"
    assert model.id == setup.claude
    assert model.display_name == setup.claude


def test_unknown_model_is_anthropic_404(claude_client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude_client.models.retrieve("no-such-model")

    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_models_path_rejects_post(setup):
    response = httpx.post(
        f"{setup.gateway.url}/v1/models/{setup.chat}",
        headers={"authorization": f"Bearer {setup.key}"},
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.fixture(params=["openai", "anthropic"])
def responses_model(request, setup):
    """A passed-through (OpenAI) and a translated (Anthropic) model."""
    return setup.chat if request.param == "openai" else setup.claude


def test_response_retrieve_returns_stored_response(client, responses_model):
    created = client.responses.create(model=responses_model, input="hello there")

    retrieved = client.responses.retrieve(created.id)

    assert retrieved.id == created.id
    assert retrieved.object == "response"
    assert retrieved.status == "completed"
    assert retrieved.model == responses_model
    assert retrieved.output_text == "Echo: hello there"
    assert retrieved.usage.input_tokens == created.usage.input_tokens


def test_streamed_response_retrieve_shows_public_model(client, responses_model):
    with client.responses.stream(model=responses_model, input="a b") as stream:
        created = stream.get_final_response()

    retrieved = client.responses.retrieve(created.id)

    assert retrieved.model == responses_model
    assert retrieved.output_text == "Echo: a b"


def test_other_org_response_is_404(client, setup, db_rows):
    created = client.responses.create(model=setup.claude, input="secret")
    other = stranger_client(setup)

    with pytest.raises(openai.NotFoundError) as retrieving:
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as deleting:
        other.responses.delete(created.id)

    assert retrieving.value.body["code"] == "response_not_found"
    assert deleting.value.body["code"] == "response_not_found"
    assert client.responses.retrieve(created.id).id == created.id


def test_unknown_response_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("resp_missing")

    error = caught.value.body
    assert error["code"] == "response_not_found"
    assert error["type"] == "invalid_request_error"
    assert "resp_missing" in error["message"]


def test_delete_removes_response(client, setup):
    created = client.responses.create(model=setup.claude, input="forget me")

    deleted = client.responses.with_raw_response.delete(created.id)

    assert deleted.http_response.status_code == 200
    assert deleted.http_response.json() == {
        "id": created.id,
        "object": "response",
        "deleted": True,
    }
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as continuing:
        client.responses.create(
            model=setup.claude, input="again", previous_response_id=created.id
        )
    assert continuing.value.body["code"] == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_unstored_response_is_404(client, setup):
    created = client.responses.create(model=setup.claude, input="hi", store=False)

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)

    assert caught.value.body["code"] == "response_not_found"


def test_streamed_retrieve_is_rejected(client, setup):
    created = client.responses.create(model=setup.claude, input="hi")

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.retrieve(created.id, stream=True)

    assert caught.value.body["param"] == "stream"


def test_response_path_allows_get_and_delete_only(setup):
    response = httpx.put(
        f"{setup.gateway.url}/v1/responses/resp_1",
        headers={"authorization": f"Bearer {setup.key}"},
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"


def expected_count(upstream_model: str, body: dict) -> int:
    request = AnthropicIngress().decode_count_tokens(body)
    return asyncio.run(estimate.prompt_tokens(upstream_model, request)).tokens


def test_count_tokens_uses_quota_estimate(claude_client, setup, fake_provider):
    body = {
        "model": setup.claude,
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER],
    }

    counted = claude_client.messages.count_tokens(**body)

    assert counted.input_tokens == expected_count("claude-sonnet-4-5", body)
    assert fake_provider.requests == []


def test_count_tokens_counts_system_and_tools(claude_client, setup):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]

    bare = claude_client.messages.count_tokens(model=setup.claude, messages=messages)
    with_system = claude_client.messages.count_tokens(
        model=setup.claude, messages=messages, system="Answer in one word."
    )
    with_tools = claude_client.messages.count_tokens(
        model=setup.claude, messages=messages, tools=[WEATHER]
    )

    assert bare.input_tokens > 0
    assert with_system.input_tokens > bare.input_tokens
    assert with_tools.input_tokens > bare.input_tokens


def test_count_tokens_rejects_bad_messages(claude_client, setup):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude_client.messages.count_tokens(
            model=setup.claude, messages=[{"role": "robot", "content": "hi"}]
        )

    body = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "messages[0].role" in body["error"]["message"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"messages": []}', b'{"messages": "hi"}'],
    ids=["invalid-json", "array", "empty-messages", "string-messages"],
)
def test_count_tokens_malformed_body_is_400(setup, content):
    response = httpx.post(
        f"{setup.gateway.url}/v1/messages/count_tokens",
        content=content,
        headers={
            "x-api-key": setup.key,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_count_tokens_without_model_is_400(setup):
    response = httpx.post(
        f"{setup.gateway.url}/v1/messages/count_tokens",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": setup.key, "anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 400
    assert "'model'" in response.json()["error"]["message"]


def test_count_tokens_needs_a_key(setup):
    client = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key="sk-wrong", max_retries=0
    )

    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.count_tokens(
            model=setup.claude, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.body["error"]["type"] == "authentication_error"


def test_count_tokens_unknown_model_is_404(claude_client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude_client.messages.count_tokens(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )

    error = caught.value.body["error"]
    assert error["type"] == "not_found_error"
    assert "no-such-model" in error["message"]
