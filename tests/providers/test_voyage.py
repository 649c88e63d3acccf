"""The voyage provider type: base64 embeddings end to end, and chat rejected with 400."""

import base64
import json
import struct
from types import SimpleNamespace

import openai
import orjson
import pytest

from nexus.engine.canonical import validate_chat_body, validate_embeddings_body
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.voyage import VoyageAdapter
from nexus.engine.snapshot import ConnectionEntry
from tests.cases.loader import load_case
from tests.support.factories import make_connection, make_model, make_tenant


def adapter(**options) -> VoyageAdapter:
    return VoyageAdapter(
        ConnectionEntry(
            1, "voy-test", "voyage", "http://127.0.0.1:9/v1", "k", options=options
        )
    )


def test_request_asks_for_base64_and_maps_dimensions():
    request = validate_embeddings_body(
        {"model": "e", "input": ["a"], "dimensions": 256, "input_type": "query"}
    )

    upstream = adapter(input_type="document").build_embeddings_request(
        request, "voyage-3.5"
    )

    assert upstream.url == "http://127.0.0.1:9/v1/embeddings"
    assert orjson.loads(upstream.body) == {
        "input": ["a"],
        "model": "voyage-3.5",
        "truncation": True,
        "encoding_format": "base64",
        "input_type": "query",
        "output_dimension": 256,
    }


def test_case_17_base64_vector_is_decoded():
    vector = [0.5, -1.0, 0.25, 2.0]
    encoded = base64.b64encode(struct.pack("<4f", *vector)).decode()
    body = orjson.dumps(
        {"data": [{"embedding": encoded, "index": 0}], "usage": {"total_tokens": 2}}
    )
    request = validate_embeddings_body({"model": "e", "input": "hello world"})

    result = adapter().parse_embeddings_response(body, request)

    assert result.vectors == [vector]
    assert result.usage.input_tokens == 2


def test_chat_is_rejected_with_400():
    request = validate_chat_body(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )

    with pytest.raises(InvalidRequestError) as raised:
        adapter().build_chat_request(request, "voyage-3.5")

    assert raised.value.status == 400
    assert "voyage" in raised.value.message


@pytest.fixture
def voyage(fake_provider, gateway, db_rows):
    connection = make_connection("voyage", fake_provider.url + "/voyage/v1", "pa-key")
    setup = SimpleNamespace(
        embed=make_model(connection, "voyage-3.5", kind="embeddings").name,
        chat=make_model(connection, "voyage-3.5").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("voyage", "pa-key")
    gateway.refresh()
    return setup


@pytest.fixture
def client(voyage):
    return openai.OpenAI(
        base_url=voyage.gateway.openai_base, api_key=voyage.key, max_retries=0
    )


def test_case_17_base64_round_trip_through_gateway(client, voyage, fake_provider):
    vector = load_case(17)["upstream_response"]["body"]["embeddings"][0]["values"]
    encoded = base64.b64encode(struct.pack("<4f", *vector)).decode()
    fake_provider.enqueue(
        "/embeddings",
        {
            "json": {
                "object": "list",
                "data": [{"embedding": encoded, "index": 0}],
                "usage": {"total_tokens": 2},
            }
        },
    )

    raw = client.embeddings.with_raw_response.create(
        model=voyage.embed, input=["hello world"], encoding_format="base64"
    )

    body = json.loads(raw.text)
    assert body["data"][0]["embedding"] == "AAAAPwAAgL8AAIA+AAAAQA=="
    assert body["model"] == voyage.embed
    assert body["usage"]["prompt_tokens"] == 2
    assert fake_provider.requests[-1].json["encoding_format"] == "base64"


def test_float_embeddings_from_the_fake(client, voyage):
    result = client.embeddings.create(
        model=voyage.embed, input=["a b", "c"], encoding_format="float", dimensions=4
    )

    assert [len(item.embedding) for item in result.data] == [4, 4]
    assert result.usage.prompt_tokens == 3


def test_chat_request_gets_a_clear_400(client, voyage, fake_provider):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=voyage.chat, messages=[{"role": "user", "content": "x"}]
        )

    assert "does not serve chat" in raised.value.message
    assert fake_provider.requests == []


def test_wrong_key_is_a_401(client, voyage, fake_provider):
    fake_provider.set_key("voyage", "other")

    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model=voyage.embed, input=["x"])
