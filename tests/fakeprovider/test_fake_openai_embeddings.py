import base64
import math
import struct

import pytest

HEADERS = {"Authorization": "Bearer sk-test"}


def cosine(left, right):
    return sum(a * b for a, b in zip(left, right, strict=True))


def embed(http, **body):
    response = http.post("/v1/embeddings", headers=HEADERS, json={"model": "e", **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_embeddings_float_default_dimension(http):
    result = embed(http, input="hello world")

    vector = result["data"][0]["embedding"]
    assert result["object"] == "list"
    assert result["data"][0]["object"] == "embedding"
    assert len(vector) == 8
    assert math.isclose(math.sqrt(sum(value * value for value in vector)), 1.0)
    assert result["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_embeddings_are_deterministic(http):
    first = embed(http, input="same text")["data"][0]["embedding"]
    second = embed(http, input="same text")["data"][0]["embedding"]

    assert first == second


def test_embeddings_shared_words_are_closer(http):
    result = embed(
        http,
        input=["the cat sat on the mat", "the cat sat on a mat", "quantum tax audit"],
        dimensions=256,
    )

    base, near, far = (item["embedding"] for item in result["data"])
    assert cosine(base, near) > 0.8
    assert cosine(base, far) < cosine(base, near)


def test_embeddings_base64_is_little_endian_float32(http):
    floats = embed(http, input="encode me", dimensions=16)["data"][0]["embedding"]
    encoded = embed(http, input="encode me", dimensions=16, encoding_format="base64")

    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = struct.unpack("<16f", raw)
    assert len(raw) == 64
    assert decoded == pytest.approx(floats, rel=1e-6)


def test_sdk_float_embeddings_honour_dimensions(openai_client):
    result = openai_client.embeddings.create(
        model="text-embedding-3-small",
        input=["one", "two words"],
        dimensions=32,
        encoding_format="float",
    )

    assert [item.index for item in result.data] == [0, 1]
    assert [len(item.embedding) for item in result.data] == [32, 32]
    assert result.usage.prompt_tokens == 3


def test_sdk_default_base64_decodes_to_floats(openai_client, fake_provider):
    result = openai_client.embeddings.create(model="text-embedding-3-small", input="hi")

    sent = fake_provider.requests[-1].json
    floats = openai_client.embeddings.create(
        model="text-embedding-3-small", input="hi", encoding_format="float"
    )
    assert sent["encoding_format"] == "base64"
    assert result.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)


def test_embeddings_token_id_input(http):
    result = embed(http, input=[[1, 2, 3], [4]])

    assert len(result["data"]) == 2
    assert result["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize(
    "body",
    [
        {"input": []},
        {"input": "x", "dimensions": 0},
        {"input": "x", "dimensions": 100_000},
        {"input": "x", "encoding_format": "hex"},
    ],
)
def test_embeddings_invalid_request_is_rejected(http, body):
    response = http.post("/v1/embeddings", headers=HEADERS, json={"model": "e", **body})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_models_list_and_retrieve(openai_client):
    models = openai_client.models.list()
    model = openai_client.models.retrieve("my-custom-model")

    assert "gpt-4o" in [item.id for item in models.data]
    assert model.id == "my-custom-model"
    assert model.object == "model"
