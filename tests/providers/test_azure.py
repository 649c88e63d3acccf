"""The azure provider type: Azure OpenAI deployments through the gateway."""

import json
from types import SimpleNamespace
from urllib.parse import parse_qs

import openai
import pytest

from nexus.engine.errors import ProviderError
from nexus.engine.providers import oauth
from nexus.engine.providers.azure import DEFAULT_API_VERSION, AzureOpenAIAdapter
from nexus.engine.providers.base import OptionsError
from nexus.engine.snapshot import ConnectionEntry
from nexus.fakeprovider.vendors.azure import entra_token_for
from tests.providers.contract import ProviderContract
from tests.support.factories import make_connection, make_model, make_tenant

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    },
}
CLIENT = {"tenant_id": "tenant-1", "client_id": "app-1", "client_secret": "s3cret"}


def deployment_requests(fake_provider):
    return [
        request
        for request in fake_provider.requests
        if request.path.startswith("/openai/deployments/")
    ]


def build(fake_provider, gateway, credential="azure-key", **options):
    connection = make_connection(
        "azure", fake_provider.url, credential, options=options
    )
    setup = SimpleNamespace(
        chat=make_model(connection, "gpt-4o-prod").name,
        embed=make_model(connection, "embed-prod", kind="embeddings").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    gateway.refresh()
    setup.client = openai.OpenAI(
        base_url=gateway.openai_base, api_key=setup.key, max_retries=0
    )
    return setup


@pytest.fixture
def azure(fake_provider, gateway, db_rows):
    fake_provider.set_key("azure", "azure-key")
    return build(fake_provider, gateway, api_version="2024-10-21")


def test_chat_goes_to_the_deployment(azure, fake_provider):
    completion = azure.client.chat.completions.create(
        model=azure.chat, messages=[{"role": "user", "content": "hello there"}]
    )

    sent = deployment_requests(fake_provider)[-1]
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.model == azure.chat
    assert completion.usage.prompt_tokens == 2
    assert sent.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == "azure-key"
    assert "authorization" not in sent.headers


def test_stream_reports_usage_and_hides_the_filter_chunk(azure):
    with_usage = list(
        azure.client.chat.completions.create(
            model=azure.chat,
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    without_usage = list(
        azure.client.chat.completions.create(
            model=azure.chat, messages=[{"role": "user", "content": "one"}], stream=True
        )
    )

    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in with_usage if chunk.choices
    )
    assert text == "Echo: one two three"
    assert with_usage[-1].usage.completion_tokens == 4
    assert [chunk.choices[0].finish_reason for chunk in with_usage if chunk.choices][
        -1
    ] == "stop"
    assert all(chunk.choices for chunk in without_usage)


def test_tool_call_and_result_round_trip(azure, fake_provider):
    messages = [{"role": "user", "content": "please call lookup"}]

    first = azure.client.chat.completions.create(
        model=azure.chat, messages=messages, tools=[LOOKUP], tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "ok"},
    ]
    second = azure.client.chat.completions.create(
        model=azure.chat, messages=messages, tools=[LOOKUP]
    )

    first_sent = deployment_requests(fake_provider)[0].json
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"word": "test"}
    assert first_sent["tool_choice"] == "required"
    assert second.choices[0].message.content == "Echo: please call lookup"


def test_parallel_tool_calls_stream_with_stable_indices(azure):
    stream = azure.client.chat.completions.create(
        model=azure.chat,
        messages=[{"role": "user", "content": "please call lookup in parallel"}],
        tools=[LOOKUP],
        stream=True,
    )

    deltas = [
        call
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]

    assert [delta.index for delta in deltas if delta.id] == [0, 1]
    assert {delta.index for delta in deltas} == {0, 1}


def test_vision_and_json_schema_pass_through(azure, fake_provider):
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    content = [
        {"type": "text", "text": "describe"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]

    azure.client.chat.completions.create(
        model=azure.chat,
        messages=[{"role": "user", "content": content}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "strict": True, "schema": schema},
        },
    )

    sent = deployment_requests(fake_provider)[-1].json
    assert sent["messages"][0]["content"] == content
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_embeddings_float_and_base64(azure, fake_provider):
    floats = azure.client.embeddings.create(
        model=azure.embed, input=["a", "b"], encoding_format="float"
    )
    default = azure.client.embeddings.create(model=azure.embed, input=["a", "b"])

    sent = deployment_requests(fake_provider)[-1]
    assert sent.path == "/openai/deployments/embed-prod/embeddings"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.json["encoding_format"] == "float"
    assert len(floats.data) == 2
    assert default.data[0].embedding == pytest.approx(
        floats.data[0].embedding, rel=1e-6
    )
    assert floats.usage.prompt_tokens == 2


def test_content_filter_block_keeps_its_code(azure, fake_provider):
    fake_provider.enqueue(
        "/chat/completions",
        {
            "status": 400,
            "error": {"type": "content_filter", "message": "The prompt was filtered."},
        },
    )

    with pytest.raises(openai.BadRequestError) as caught:
        azure.client.chat.completions.create(
            model=azure.chat, messages=[{"role": "user", "content": "bad"}]
        )

    assert caught.value.code == "content_filter"
    assert caught.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_errors_keep_their_status(azure, fake_provider, status, error_class):
    fake_provider.enqueue(
        "/chat/completions",
        {"status": status, "error": {"type": str(status), "message": "Scripted."}},
    )

    with pytest.raises(error_class) as caught:
        azure.client.chat.completions.create(
            model=azure.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == status


def test_wrong_key_is_an_authentication_error(azure, fake_provider):
    fake_provider.set_key("azure", "another-key")

    with pytest.raises(openai.AuthenticationError):
        azure.client.chat.completions.create(
            model=azure.chat, messages=[{"role": "user", "content": "hi"}]
        )


def test_default_api_version_is_sent(fake_provider, gateway, db_rows):
    setup = build(fake_provider, gateway)

    setup.client.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert deployment_requests(fake_provider)[-1].query == {
        "api-version": DEFAULT_API_VERSION
    }


def test_entra_token_is_sent_as_bearer(fake_provider, gateway, db_rows):
    fake_provider.set_key("azure", "entra-access-token")
    setup = build(
        fake_provider, gateway, credential="entra-access-token", auth="entra_token"
    )

    setup.client.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    sent = deployment_requests(fake_provider)[-1]
    assert sent.headers["authorization"] == "Bearer entra-access-token"
    assert "api-key" not in sent.headers


@pytest.fixture
def entra(fake_provider, gateway, db_rows):
    oauth.TOKENS.clear()
    fake_provider.set_key("entra", CLIENT["client_secret"])
    fake_provider.set_key("azure", entra_token_for(CLIENT["client_id"]))
    yield build(
        fake_provider,
        gateway,
        credential=json.dumps(CLIENT),
        auth="entra_client_credentials",
        token_url=fake_provider.url + "/{tenant_id}/oauth2/v2.0/token",
    )
    oauth.TOKENS.clear()


def test_client_credentials_token_is_fetched_once(entra, fake_provider):
    for _ in range(2):
        entra.client.chat.completions.create(
            model=entra.chat, messages=[{"role": "user", "content": "hi"}]
        )
    entra.client.embeddings.create(model=entra.embed, input="hi")

    tokens = [
        request
        for request in fake_provider.requests
        if request.path.endswith("/oauth2/v2.0/token")
    ]
    form = {
        name: values[0] for name, values in parse_qs(tokens[0].body.decode()).items()
    }
    assert len(tokens) == 1
    assert tokens[0].path == "/tenant-1/oauth2/v2.0/token"
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "app-1",
        "client_secret": "s3cret",
        "scope": "https://cognitiveservices.azure.com/.default",
    }
    assert all(
        request.headers["authorization"] == "Bearer " + entra_token_for("app-1")
        for request in deployment_requests(fake_provider)
    )


def test_rejected_client_secret_is_an_authentication_error(entra, fake_provider):
    fake_provider.set_key("entra", "another-secret")

    with pytest.raises(openai.AuthenticationError) as caught:
        entra.client.chat.completions.create(
            model=entra.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert "invalid_client" in caught.value.message
    assert deployment_requests(fake_provider) == []


def test_azure_openai_sdk_speaks_to_the_fake(fake_provider):
    client = openai.AzureOpenAI(
        azure_endpoint=fake_provider.url,
        api_key="azure-key",
        api_version="2024-10-21",
        max_retries=0,
    )

    completion = client.chat.completions.create(
        model="gpt-4o-prod", messages=[{"role": "user", "content": "hello there"}]
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-prod",
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
        )
    )
    vectors = client.embeddings.create(model="embed-prod", input=["a"])

    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert chunks[0].choices == []
    assert (
        "".join(
            chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
        )
        == "Echo: one two"
    )
    assert len(vectors.data[0].embedding) == 8
    assert (
        fake_provider.requests[-1].path == "/openai/deployments/embed-prod/embeddings"
    )


def test_fake_requires_an_api_version(fake_provider):
    client = openai.OpenAI(
        base_url=fake_provider.url + "/openai/deployments/d", api_key="k", max_retries=0
    )

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="d", messages=[{"role": "user", "content": "hi"}]
        )


@pytest.mark.parametrize(
    "options",
    [
        {"auth": "password"},
        {"api_version": ""},
        {"token_url": "ftp://x"},
        {"deployment": "x"},
    ],
)
def test_malformed_options_are_rejected(options):
    with pytest.raises(OptionsError):
        AzureOpenAIAdapter.parse_options(options)


def test_missing_base_url_is_a_configuration_error():
    connection = ConnectionEntry(
        id=1, name="az", provider_type="azure", base_url="", credential="k"
    )

    with pytest.raises(ProviderError) as caught:
        AzureOpenAIAdapter(connection).chat_url("gpt-4o-prod")

    assert caught.value.code == "provider_misconfigured"


def test_deployment_names_are_escaped_in_the_url():
    connection = ConnectionEntry(
        id=1,
        name="az",
        provider_type="azure",
        base_url="https://r.openai.azure.com/",
        credential="k",
    )

    url = AzureOpenAIAdapter(connection).chat_url("my deployment/1")

    assert (
        url
        == "https://r.openai.azure.com/openai/deployments/my%20deployment%2F1/chat/completions?api-version=2024-10-21"
    )


class TestAzureContract(ProviderContract):
    provider_type = "azure"
    upstream_model = "gpt-4o-prod"
    embeddings_model = "embed-prod"
    credential = "azure-key"
    chat_path = "/chat/completions"

    def base_url(self, fake_provider):
        return fake_provider.url

    def prepare(self, fake_provider):
        fake_provider.set_key("azure", "azure-key")
