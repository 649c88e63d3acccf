"""The bedrock provider type end to end: the openai SDK through the gateway to fake Bedrock."""

import base64
import json
import struct
from types import SimpleNamespace

import botocore.session
import openai
import pytest
from botocore.config import Config

from tests.cases.loader import load_case
from tests.support.factories import make_connection, make_model, make_tenant

ACCESS_KEY = "AKIDFAKEBEDROCK"
CREDENTIAL = json.dumps({"access_key_id": ACCESS_KEY, "secret_access_key": "s3cret"})
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def bedrock(fake_provider, gateway, db_rows):
    connection = make_connection(
        "bedrock", fake_provider.url, CREDENTIAL, region="us-east-1"
    )
    setup = SimpleNamespace(
        chat=make_model(connection, CLAUDE).name,
        titan=make_model(
            connection, "amazon.titan-embed-text-v2:0", kind="embeddings"
        ).name,
        cohere=make_model(
            connection, "cohere.embed-english-v3", kind="embeddings"
        ).name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("bedrock", ACCESS_KEY)
    gateway.refresh()
    return setup


@pytest.fixture
def client(bedrock):
    return openai.OpenAI(
        base_url=bedrock.gateway.openai_base, api_key=bedrock.key, max_retries=0
    )


def upstream(fake_provider, suffix="/converse"):
    return [
        request for request in fake_provider.requests if request.path.endswith(suffix)
    ][-1]


def test_chat_completion_is_signed_and_translated(client, bedrock, fake_provider):
    completion = client.chat.completions.create(
        model=bedrock.chat,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
    )

    sent = upstream(fake_provider)
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 4
    assert sent.path == f"/model/{CLAUDE}/converse"
    assert sent.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"
    )
    assert sent.json["system"] == [{"text": "Be brief."}]


def test_streaming_chat_decodes_event_stream(client, bedrock, fake_provider):
    stream = client.chat.completions.create(
        model=bedrock.chat,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert text == "Echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 4
    assert upstream(fake_provider, "/converse-stream").headers["accept"] == (
        "application/vnd.amazon.eventstream"
    )


def test_streamed_parallel_tool_calls_keep_indices(client, bedrock):
    stream = client.chat.completions.create(
        model=bedrock.chat,
        messages=[{"role": "user", "content": "call get_weather in parallel"}],
        tools=[WEATHER],
        stream=True,
    )
    calls = [
        call
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]

    assert sorted({call.index for call in calls}) == [0, 1]
    assert [call.function.name for call in calls if call.id] == [
        "get_weather",
        "get_weather",
    ]
    for index in (0, 1):
        arguments = "".join(
            c.function.arguments or "" for c in calls if c.index == index
        )
        assert json.loads(arguments) == {"city": "test"}


def test_case_21_tool_results_pass_bedrock_validation(client, bedrock, fake_provider):
    case = load_case(21)
    body = dict(case["client_request"]["body"], model=bedrock.chat)
    fake_provider.enqueue(
        "/converse", {"json": case["upstream_response"]["valid_request"]["body"]}
    )

    completion = client.chat.completions.create(**body)

    expected = case["expect"]["client_response"]
    sent = upstream(fake_provider)
    assert (
        completion.choices[0].message.content == expected["choices[0].message.content"]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert completion.usage.completion_tokens == expected["usage"]["completion_tokens"]
    assert completion.usage.total_tokens == expected["usage"]["total_tokens"]
    assert sent.json["messages"] == case["expect"]["upstream_request"]["messages"]


def test_case_21_unscripted_request_is_accepted_by_the_fake_validator(client, bedrock):
    case = load_case(21)
    body = dict(case["client_request"]["body"], model=bedrock.chat)

    completion = client.chat.completions.create(**body)

    assert completion.choices[0].message.content == "Echo: Weather in Paris and Rome?"


def test_bedrock_validation_error_is_a_client_400(client, bedrock, fake_provider):
    rejected = load_case(21)["upstream_response"]["duplicate_ids"]
    fake_provider.enqueue(
        "/converse",
        {"status": 400, "json": rejected["body"], "headers": rejected["headers"]},
    )

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=bedrock.chat, messages=[{"role": "user", "content": "x"}]
        )

    assert "duplicate Ids" in raised.value.message
    assert raised.value.body["type"] == "invalid_request_error"


def test_wrong_access_key_is_a_401(client, bedrock, fake_provider):
    fake_provider.set_key("bedrock", "AKIDSOMEONEELSE")

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=bedrock.chat, messages=[{"role": "user", "content": "x"}]
        )


def test_throttling_is_a_429(client, bedrock, fake_provider):
    fake_provider.enqueue(
        "/converse",
        {"status": 429, "error": {"type": "ThrottlingException", "message": "slow"}},
    )

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model=bedrock.chat, messages=[{"role": "user", "content": "x"}]
        )


def test_http_image_url_gets_a_clear_400(client, bedrock, fake_provider):
    image = {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}}

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=bedrock.chat, messages=[{"role": "user", "content": [image]}]
        )

    assert "data URL" in raised.value.message
    assert not [r for r in fake_provider.requests if r.path.endswith("/converse")]


def test_json_schema_is_answered_as_content(client, bedrock):
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }

    completion = client.chat.completions.create(
        model=bedrock.chat,
        messages=[{"role": "user", "content": "give n"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": schema},
        },
    )

    assert json.loads(completion.choices[0].message.content) == {"n": 1}
    assert completion.choices[0].finish_reason == "stop"


def test_reasoning_comes_back_as_reasoning_content(client, bedrock):
    completion = client.chat.completions.create(
        model=bedrock.chat,
        messages=[{"role": "user", "content": "why"}],
        reasoning_effort="low",
    )

    message = completion.choices[0].message
    assert message.reasoning_content == "Thinking about: why"
    assert message.thinking_blocks[0]["signature"]


def test_titan_batch_is_one_call_per_input(client, bedrock, fake_provider):
    result = client.embeddings.create(model=bedrock.titan, input=["a b", "c", "d e f"])

    calls = [r for r in fake_provider.requests if r.path.endswith("/invoke")]
    assert [call.json["inputText"] for call in calls] == ["a b", "c", "d e f"]
    assert all(
        call.headers["authorization"].startswith("AWS4-HMAC-SHA256") for call in calls
    )
    assert len(result.data) == 3
    assert result.usage.prompt_tokens == 6


def test_case_17_base64_embeddings_from_cohere_on_bedrock(
    client, bedrock, fake_provider
):
    vector = load_case(17)["upstream_response"]["body"]["embeddings"][0]["values"]
    fake_provider.enqueue("/invoke", {"json": {"embeddings": {"float": [vector]}}})

    raw = client.embeddings.with_raw_response.create(
        model=bedrock.cohere, input=["hello world"], encoding_format="base64"
    )

    body = json.loads(raw.text)
    decoded = struct.unpack("<4f", base64.b64decode(body["data"][0]["embedding"]))
    assert body["data"][0]["embedding"] == "AAAAPwAAgL8AAIA+AAAAQA=="
    assert list(decoded) == vector
    assert body["usage"]["prompt_tokens"] >= 1
    assert fake_provider.requests[-1].json["texts"] == ["hello world"]


def test_botocore_client_reads_the_fake(fake_provider):
    client = botocore.session.get_session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=fake_provider.url,
        aws_access_key_id="AKIDBOTO",
        aws_secret_access_key="s",
        config=Config(retries={"max_attempts": 0}),
    )
    messages = [{"role": "user", "content": [{"text": "hello there"}]}]

    answer = client.converse(modelId=CLAUDE, messages=messages)
    events = list(client.converse_stream(modelId=CLAUDE, messages=messages)["stream"])

    assert answer["output"]["message"]["content"] == [{"text": "Echo: hello there"}]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"]
        for e in events
        if "contentBlockDelta" in e
    )
    assert text == "Echo: hello there"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 3
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(
            modelId=CLAUDE, messages=[{"role": "assistant", "content": [{"text": "x"}]}]
        )
