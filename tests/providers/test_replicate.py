"""The replicate provider type: prompt template, polling, streams, and the gateway end to end."""

from types import SimpleNamespace

import openai
import orjson
import pytest

from nexus.engine.canonical import validate_chat_body
from nexus.engine.errors import InvalidRequestError, ProviderStatusError
from nexus.engine.providers.replicate import ReplicateAdapter
from nexus.engine.snapshot import ConnectionEntry
from nexus.fakeprovider.vendors.base import sse_event
from nexus.fakeprovider.vendors.replicate import output_event
from tests.support.factories import make_connection, make_model, make_tenant

MODEL = "meta/meta-llama-3-8b-instruct"


def adapter(**options) -> ReplicateAdapter:
    return ReplicateAdapter(
        ConnectionEntry(
            1, "rep-test", "replicate", "http://127.0.0.1:9/v1", "r8_k", options=options
        )
    )


def chat(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return validate_chat_body(body)


def test_prompt_template_and_inputs():
    request = chat(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
        ],
        max_tokens=20,
        temperature=0.2,
        stop=["a", "b"],
    )

    upstream = adapter(extra_input={"top_k": 5}).build_chat_request(request, MODEL)

    body = orjson.loads(upstream.body)
    assert upstream.url == f"http://127.0.0.1:9/v1/models/{MODEL}/predictions"
    assert upstream.headers["prefer"] == "wait=60"
    assert body["input"] == {
        "prompt": "User: Hi\n\nAssistant: Hello.\n\nUser: Bye\n\nAssistant:",
        "system_prompt": "Be brief.",
        "max_tokens": 20,
        "temperature": 0.2,
        "stop_sequences": "a,b",
        "top_k": 5,
    }


def test_version_ids_use_the_predictions_endpoint():
    upstream = adapter().build_chat_request(chat(stream=True), "owner/model:abc123")

    body = orjson.loads(upstream.body)
    assert upstream.url == "http://127.0.0.1:9/v1/predictions"
    assert body["version"] == "abc123"
    assert body["stream"] is True
    assert "prefer" not in upstream.headers


def test_tools_are_rejected_with_400():
    tool = {"type": "function", "function": {"name": "f"}}

    with pytest.raises(InvalidRequestError) as raised:
        adapter().build_chat_request(chat(tools=[tool]), MODEL)

    assert raised.value.status == 400
    assert "tools" in raised.value.message


def test_failed_prediction_is_an_upstream_error():
    body = orjson.dumps({"id": "p", "status": "failed", "error": "CUDA out of memory"})

    with pytest.raises(ProviderStatusError) as raised:
        adapter().parse_chat_response(body, chat())

    assert "CUDA out of memory" in raised.value.message


def test_stream_decoder_reads_output_and_done():
    decoder = adapter().chat_stream_decoder(chat(stream=True))

    chunks = decoder.feed(output_event(0, "Hello\n") + output_event(1, "world"))
    chunks += decoder.feed(sse_event({}, "done"))

    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == "Hello\nworld"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 2
    assert decoder.finished


def test_stream_error_event_fails_the_stream():
    decoder = adapter().chat_stream_decoder(chat(stream=True))

    with pytest.raises(ProviderStatusError) as raised:
        decoder.feed(sse_event({"detail": "model crashed"}, "error"))

    assert "model crashed" in raised.value.message


@pytest.fixture
def replicate(fake_provider, gateway, db_rows):
    connection = make_connection(
        "replicate",
        fake_provider.url + "/v1",
        "r8_key",
        options={"poll_interval": 0.01},
    )
    setup = SimpleNamespace(
        chat=make_model(connection, MODEL).name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("replicate", "r8_key")
    gateway.refresh()
    return setup


@pytest.fixture
def client(replicate):
    return openai.OpenAI(
        base_url=replicate.gateway.openai_base, api_key=replicate.key, max_retries=0
    )


def test_prefer_wait_answers_synchronously(client, replicate, fake_provider):
    completion = client.chat.completions.create(
        model=replicate.chat, messages=[{"role": "user", "content": "hello there"}]
    )

    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.usage.completion_tokens == 3
    assert len(fake_provider.requests) == 1
    assert fake_provider.requests[0].headers["prefer"] == "wait=60"


def test_unfinished_prediction_is_polled(client, replicate, fake_provider):
    get_url = fake_provider.url + "/v1/predictions/p1"
    pending = {"id": "p1", "status": "starting", "urls": {"get": get_url}}
    done = {
        "id": "p1",
        "status": "succeeded",
        "output": ["Slow", " answer"],
        "metrics": {"input_token_count": 7, "output_token_count": 2},
        "urls": {"get": get_url},
    }
    fake_provider.enqueue("/predictions", {"json": pending, "status": 201})
    fake_provider.enqueue(
        "/v1/predictions/p1", {"json": dict(pending, status="processing")}
    )
    fake_provider.enqueue("/v1/predictions/p1", {"json": done})

    completion = client.chat.completions.create(
        model=replicate.chat, messages=[{"role": "user", "content": "x"}], max_tokens=2
    )

    assert completion.choices[0].message.content == "Slow answer"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.prompt_tokens == 7
    assert [r.method for r in fake_provider.requests] == ["POST", "GET", "GET"]


def test_streaming_reads_the_stream_url(client, replicate, fake_provider):
    chunks = list(
        client.chat.completions.create(
            model=replicate.chat,
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert text == "Echo: one two"
    assert chunks[-1].usage.completion_tokens == 3
    stream_call = fake_provider.requests[-1]
    assert stream_call.method == "GET"
    assert stream_call.headers["accept"] == "text/event-stream"


def test_tools_get_a_400_without_an_upstream_call(client, replicate, fake_provider):
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object"}},
    }

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=replicate.chat,
            messages=[{"role": "user", "content": "x"}],
            tools=[tool],
        )

    assert fake_provider.requests == []


def test_invalid_token_is_a_401(client, replicate, fake_provider):
    fake_provider.set_key("replicate", "other")

    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(
            model=replicate.chat, messages=[{"role": "user", "content": "x"}]
        )

    assert "authentication token" in raised.value.message


def test_one_image_goes_into_the_image_input():
    image = {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}}
    request = chat(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "what"}, image]}
        ]
    )

    body = orjson.loads(adapter().build_chat_request(request, MODEL).body)

    assert body["input"]["image"] == "https://example.test/a.png"
    assert body["input"]["prompt"] == "User: what\n\nAssistant:"


def test_two_images_are_rejected():
    image = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }
    request = chat(messages=[{"role": "user", "content": [image, image]}])

    with pytest.raises(InvalidRequestError):
        adapter().build_chat_request(request, MODEL)
