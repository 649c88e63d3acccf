"""The vertex provider type: Gemini and Claude models on Vertex AI through the gateway."""

import base64
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import parse_qs

import anthropic
import httpx
import openai
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials

from nexus.engine.canonical import validate_chat_body
from nexus.engine.providers import oauth
from nexus.engine.providers.anthropic import AnthropicStreamDecoder
from nexus.engine.providers.gemini_stream import GeminiStreamDecoder
from nexus.engine.providers.vertex import (
    PublisherStreamDecoder,
    VertexAdapter,
    split_model,
)
from nexus.engine.snapshot import ConnectionEntry
from nexus.fakeprovider.vendors.google_oauth import access_token_for
from tests.providers.contract import ProviderContract
from tests.support.factories import make_connection, make_model, make_tenant

EMAIL = "nexus-test@proj-1.iam.gserviceaccount.com"
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


def service_account(key: rsa.RSAPrivateKey, project: str = "proj-from-key") -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": EMAIL,
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def vertex(fake_provider, gateway, db_rows, signing_key):
    oauth.TOKENS.clear()
    options = {"project_id": "proj-1", "token_url": fake_provider.url + "/token"}
    connection = make_connection(
        "vertex",
        fake_provider.url,
        service_account(signing_key),
        region="us-east5",
        options=options,
    )
    fake_provider.set_key("google_oauth", EMAIL)
    fake_provider.set_key("vertex", access_token_for(EMAIL))
    setup = SimpleNamespace(
        gemini=make_model(connection, "gemini-2.5-flash").name,
        claude=make_model(connection, "claude-sonnet-4-5@20250929").name,
        embed=make_model(connection, "text-embedding-005", kind="embeddings").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    gateway.refresh()
    yield setup
    oauth.TOKENS.clear()


@pytest.fixture
def client(vertex):
    return openai.OpenAI(
        base_url=vertex.gateway.openai_base, api_key=vertex.key, max_retries=0
    )


def model_requests(fake_provider):
    return [
        request for request in fake_provider.requests if "/publishers/" in request.path
    ]


def token_requests(fake_provider):
    return [request for request in fake_provider.requests if request.path == "/token"]


PREFIX = "/v1/projects/proj-1/locations/us-east5/publishers"


def test_gemini_chat_goes_to_the_google_publisher(client, vertex, fake_provider):
    completion = client.chat.completions.create(
        model=vertex.gemini, messages=[{"role": "user", "content": "hello there"}]
    )

    sent = model_requests(fake_provider)[-1]
    assert completion.choices[0].message.content == "Echo: hello there"
    assert sent.path == PREFIX + "/google/models/gemini-2.5-flash:generateContent"
    assert sent.headers["authorization"] == "Bearer " + access_token_for(EMAIL)
    assert sent.json["contents"] == [
        {"role": "user", "parts": [{"text": "hello there"}]}
    ]


def test_gemini_stream_with_tools(client, vertex, fake_provider):
    chunks = list(
        client.chat.completions.create(
            model=vertex.gemini,
            messages=[{"role": "user", "content": "please call lookup"}],
            tools=[LOOKUP],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    calls = [
        call
        for chunk in chunks
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    assert (
        model_requests(fake_provider)[-1].path
        == PREFIX + "/google/models/gemini-2.5-flash:streamGenerateContent"
    )
    assert calls[0].function.name == "lookup"
    assert json.loads("".join(call.function.arguments or "" for call in calls)) == {
        "word": "test"
    }
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][
        -1
    ] == "tool_calls"
    assert chunks[-1].usage.prompt_tokens == 3


def test_claude_chat_goes_to_raw_predict(client, vertex, fake_provider):
    completion = client.chat.completions.create(
        model=vertex.claude,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
    )

    sent = model_requests(fake_provider)[-1]
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 4
    assert (
        sent.path == PREFIX + "/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    )
    assert sent.json["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in sent.json
    assert sent.json["system"] == [{"type": "text", "text": "Be brief."}]
    assert "anthropic-version" not in sent.headers
    assert "x-api-key" not in sent.headers


def test_claude_stream_goes_to_stream_raw_predict(client, vertex, fake_provider):
    chunks = list(
        client.chat.completions.create(
            model=vertex.claude,
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    sent = model_requests(fake_provider)[-1]
    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert (
        sent.path
        == PREFIX + "/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    )
    assert sent.json["stream"] is True
    assert text == "Echo: one two three"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][
        -1
    ] == "stop"
    assert chunks[-1].usage.completion_tokens == 4


def test_claude_tool_call_and_result(client, vertex, fake_provider):
    messages = [{"role": "user", "content": "please call lookup"}]

    first = client.chat.completions.create(
        model=vertex.claude, messages=messages, tools=[LOOKUP]
    )
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "found"},
    ]
    second = client.chat.completions.create(
        model=vertex.claude, messages=messages, tools=[LOOKUP]
    )

    sent = model_requests(fake_provider)[-1].json
    assert first.choices[0].finish_reason == "tool_calls"
    assert sent["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": "found",
    }
    assert second.choices[0].message.content == "Echo: please call lookup"


def test_embeddings_use_predict_with_token_statistics(client, vertex, fake_provider):
    floats = client.embeddings.create(
        model=vertex.embed,
        input=["hello world", "b"],
        dimensions=4,
        encoding_format="float",
    )
    encoded = httpx.post(
        vertex.gateway.openai_base + "/embeddings",
        headers={"authorization": f"Bearer {vertex.key}"},
        json={
            "model": vertex.embed,
            "input": ["hello world"],
            "dimensions": 4,
            "encoding_format": "base64",
        },
    ).json()

    sent = model_requests(fake_provider)
    decoded = struct.unpack("<4f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert sent[0].path == PREFIX + "/google/models/text-embedding-005:predict"
    assert sent[0].json == {
        "instances": [{"content": "hello world"}, {"content": "b"}],
        "parameters": {"outputDimensionality": 4},
    }
    assert len(floats.data[0].embedding) == 4
    assert floats.usage.prompt_tokens == 3
    assert list(decoded) == pytest.approx(floats.data[0].embedding, rel=1e-6)


def test_access_token_is_fetched_once_and_reused(
    client, vertex, fake_provider, signing_key
):
    for _ in range(3):
        client.chat.completions.create(
            model=vertex.gemini, messages=[{"role": "user", "content": "hi"}]
        )

    tokens = token_requests(fake_provider)
    form = {
        name: values[0] for name, values in parse_qs(tokens[0].body.decode()).items()
    }
    header, claims, signature = form["assertion"].split(".")
    signed = f"{header}.{claims}".encode()
    claims = json.loads(base64.urlsafe_b64decode(claims + "=="))
    signing_key.public_key().verify(
        base64.urlsafe_b64decode(signature + "=="),
        signed,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert len(tokens) == 1
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": "key-1",
    }
    assert claims["iss"] == EMAIL
    assert claims["aud"] == fake_provider.url + "/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600


def test_concurrent_requests_share_one_token_fetch(client, vertex, fake_provider):
    fake_provider.enqueue("/token", {"delay": 0.5})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda index: client.chat.completions.create(
                    model=vertex.gemini,
                    messages=[{"role": "user", "content": f"hi {index}"}],
                ),
                range(8),
            )
        )

    assert len(token_requests(fake_provider)) == 1
    assert sorted(answer.choices[0].message.content for answer in answers) == sorted(
        f"Echo: hi {i}" for i in range(8)
    )


def test_token_close_to_expiry_is_replaced(client, vertex, fake_provider):
    fake_provider.set_key("vertex", None)
    fake_provider.enqueue(
        "/token",
        {
            "json": {
                "access_token": "short-lived",
                "expires_in": 120,
                "token_type": "Bearer",
            }
        },
    )

    client.chat.completions.create(
        model=vertex.gemini, messages=[{"role": "user", "content": "one"}]
    )
    client.chat.completions.create(
        model=vertex.gemini, messages=[{"role": "user", "content": "two"}]
    )

    first, second = model_requests(fake_provider)
    assert len(token_requests(fake_provider)) == 2
    assert first.headers["authorization"] == "Bearer short-lived"
    assert second.headers["authorization"] == "Bearer " + access_token_for(EMAIL)


def test_rejected_service_account_reads_as_authentication_error(
    client, vertex, fake_provider
):
    fake_provider.set_key("google_oauth", "someone-else@proj-1.iam.gserviceaccount.com")

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model=vertex.gemini, messages=[{"role": "user", "content": "hi"}]
        )

    assert "invalid_grant" in caught.value.message
    assert model_requests(fake_provider) == []


def test_malformed_credential_fails_only_its_own_requests(
    client, vertex, fake_provider, gateway, db_rows
):
    broken = make_connection(
        "vertex", fake_provider.url, "not json", options={"project_id": "p"}
    )
    broken_model = make_model(broken, "gemini-2.5-flash").name
    gateway.refresh()

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=broken_model, messages=[{"role": "user", "content": "hi"}]
        )
    healthy = client.chat.completions.create(
        model=vertex.gemini, messages=[{"role": "user", "content": "hi"}]
    )

    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "invalid_provider_credential"
    assert healthy.choices[0].message.content == "Echo: hi"


def test_google_rate_limit_keeps_429(client, vertex, fake_provider):
    fake_provider.enqueue(
        ":generateContent",
        {
            "status": 429,
            "error": {"type": "RESOURCE_EXHAUSTED", "message": "Quota exceeded."},
        },
    )

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model=vertex.gemini, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 429


def test_claude_overloaded_keeps_529(client, vertex, fake_provider):
    body = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    fake_provider.enqueue(":rawPredict", {"status": 529, "json": body})

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=vertex.claude, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 529
    assert caught.value.body["type"] == "overloaded_error"


def test_messages_callers_reach_claude_on_vertex(vertex, fake_provider):
    client = anthropic.Anthropic(
        base_url=vertex.gateway.url, api_key=vertex.key, max_retries=0
    )

    with client.messages.stream(
        model=vertex.claude,
        max_tokens=100,
        messages=[{"role": "user", "content": "one two"}],
    ) as stream:
        text = "".join(stream.text_stream)

    assert text == "Echo: one two"
    assert model_requests(fake_provider)[-1].path.endswith(":streamRawPredict")


def test_anthropic_vertex_client_against_fake(fake_provider):
    client = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="proj-1",
        access_token="token",
        base_url=fake_provider.url + "/v1",
        max_retries=0,
    )

    message = client.messages.create(
        model="claude-sonnet-4-5@20250929",
        max_tokens=50,
        messages=[{"role": "user", "content": "hello there"}],
    )

    assert message.content[0].text == "Echo: hello there"
    assert fake_provider.requests[-1].json["anthropic_version"]


def test_genai_vertex_client_against_fake(fake_provider):
    client = genai.Client(
        vertexai=True,
        project="proj-1",
        location="us-east5",
        credentials=Credentials(token="token"),
        http_options=types.HttpOptions(
            base_url=fake_provider.url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )

    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="hello there"
    )

    assert response.text == "Echo: hello there"
    assert (
        "/projects/proj-1/locations/us-east5/publishers/google/models/"
        in fake_provider.requests[-1].path
    )


@pytest.mark.parametrize(
    ("upstream_model", "expected"),
    [
        ("gemini-2.5-pro", ("google", "gemini-2.5-pro")),
        ("claude-opus-4-1@20250805", ("anthropic", "claude-opus-4-1@20250805")),
        ("anthropic/claude-x", ("anthropic", "claude-x")),
        (
            "publishers/google/models/text-embedding-005",
            ("google", "text-embedding-005"),
        ),
        ("meta/llama-4", ("google", "meta/llama-4")),
    ],
)
def test_publisher_comes_from_the_model_id(upstream_model, expected):
    assert split_model(upstream_model) == expected


def connection(signing_key, **fields):
    values = {
        "id": 9,
        "name": "vertex-unit",
        "provider_type": "vertex",
        "base_url": "",
        "credential": service_account(signing_key),
    }
    values.update(fields)
    return ConnectionEntry(**values)


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("", "https://aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
        ("europe-west1", "https://europe-west1-aiplatform.googleapis.com"),
    ],
)
def test_region_host_and_key_project(signing_key, region, host):
    adapter = VertexAdapter(connection(signing_key, region=region))

    request = adapter.build_chat_request(
        validate_chat_body(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        ),
        "gemini-2.5-pro",
    )

    location = region or "global"
    assert (
        request.url
        == f"{host}/v1/projects/proj-from-key/locations/{location}/publishers/google/models/gemini-2.5-pro:generateContent"
    )


def test_stream_decoder_is_chosen_from_the_first_event():
    anthropic_stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"c","usage":{"input_tokens":3}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    gemini_stream = b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}\r\n\r\n'

    for raw, inner_type in (
        (anthropic_stream, AnthropicStreamDecoder),
        (gemini_stream, GeminiStreamDecoder),
    ):
        decoder = PublisherStreamDecoder(
            GeminiStreamDecoder("v"), AnthropicStreamDecoder("v")
        )
        chunks = [
            chunk
            for index in range(0, len(raw), 7)
            for chunk in decoder.feed(raw[index : index + 7])
        ]
        chunks += decoder.finish()

        text = "".join(
            chunk["choices"][0]["delta"].get("content") or ""
            for chunk in chunks
            if chunk["choices"]
        )
        assert isinstance(decoder.inner, inner_type)
        assert text == "Hi"
        assert decoder.finished
        assert decoder.usage.input_tokens == 3
        assert decoder.usage.output_tokens == 1
        assert orjson.dumps(chunks)


CONTRACT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class VertexContract(ProviderContract):
    provider_type = "vertex"
    credential = service_account(CONTRACT_KEY)

    def base_url(self, fake_provider):
        # The token endpoint is on the fake, whose address is known only here.
        self.options = {
            "project_id": "proj-1",
            "token_url": fake_provider.url + "/token",
        }
        return fake_provider.url

    def prepare(self, fake_provider):
        oauth.TOKENS.clear()
        fake_provider.set_key("google_oauth", EMAIL)
        fake_provider.set_key("vertex", access_token_for(EMAIL))


class TestVertexGeminiContract(VertexContract):
    upstream_model = "gemini-2.5-flash"
    embeddings_model = "text-embedding-005"
    chat_path = ":generateContent"


class TestVertexClaudeContract(VertexContract):
    upstream_model = "claude-sonnet-4-5@20250929"
    chat_path = ":rawPredict"
