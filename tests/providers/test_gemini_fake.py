"""The google-genai SDK against the fake Gemini API, proving the fake's wire format."""

import base64

import httpx
import pytest
from google import genai
from google.genai import errors, types

from nexus.fakeprovider.reply import stable_id


@pytest.fixture
def client(fake_provider):
    fake_provider.set_key("gemini", "gemini-key")
    return genai.Client(
        api_key="gemini-key",
        http_options=types.HttpOptions(
            base_url=fake_provider.url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


def lookup(word: str) -> str:
    """Look a word up."""
    return word


def test_generate_content_returns_text_and_usage(client):
    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="hello there"
    )

    assert response.text == "Echo: hello there"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.prompt_token_count == 2
    assert response.usage_metadata.candidates_token_count == 3
    assert response.model_version == "gemini-2.5-flash"


def test_stream_arrives_word_by_word(client):
    chunks = list(
        client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="one two three"
        )
    )

    assert "".join(chunk.text for chunk in chunks) == "Echo: one two three"
    assert len(chunks) == 4
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 4


def test_function_call_carries_a_thought_signature(client):
    config = types.GenerateContentConfig(
        tools=[lookup],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(include_thoughts=True),
    )

    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="please call lookup", config=config
    )

    parts = response.candidates[0].content.parts
    assert parts[0].thought is True
    assert parts[0].text == "Thinking about: please call lookup"
    assert response.function_calls[0].name == "lookup"
    assert response.function_calls[0].args == {"word": "test"}
    assert parts[1].thought_signature.startswith(b"sig-")
    assert response.usage_metadata.thoughts_token_count == 5


def test_function_response_turn_gets_a_text_answer(client):
    call = types.Part.from_function_call(name="lookup", args={"word": "a"})
    result = types.Part.from_function_response(
        name="lookup", response={"output": "found"}
    )
    contents = [
        types.Content(
            role="user", parts=[types.Part.from_text(text="please call lookup")]
        ),
        types.Content(role="model", parts=[call]),
        types.Content(role="user", parts=[result]),
    ]
    config = types.GenerateContentConfig(
        tools=[lookup],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )

    response = client.models.generate_content(
        model="gemini-2.5-flash", contents=contents, config=config
    )

    assert response.text == "Echo: please call lookup"
    assert response.function_calls is None


def test_embed_content_returns_one_vector_per_text(client):
    response = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["hello world", "other"],
        config=types.EmbedContentConfig(output_dimensionality=4),
    )

    assert len(response.embeddings) == 2
    assert len(response.embeddings[0].values) == 4
    assert response.embeddings[0].values != response.embeddings[1].values


def test_scripted_error_raises_the_sdk_error(client, fake_provider):
    fake_provider.enqueue(
        ":generateContent",
        {
            "status": 429,
            "error": {"type": "RESOURCE_EXHAUSTED", "message": "Slow down."},
        },
    )

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.message == "Slow down."


def test_wrong_api_key_is_rejected_like_gemini(client, fake_provider):
    fake_provider.set_key("gemini", "another-key")

    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert caught.value.code == 400
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def generate(fake_provider, body):
    return httpx.post(
        fake_provider.url + "/v1beta/models/gemini-2.5-flash:generateContent",
        headers={"x-goog-api-key": "gemini-key"},
        json=body,
    )


USER_HI = [{"role": "user", "parts": [{"text": "hi"}]}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"contents": USER_HI, "encoding_format": "float"},
            'Unknown name "encoding_format"',
        ),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
            "valid role",
        ),
        (
            {
                "contents": USER_HI,
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {
                                    "type": "object",
                                    "additionalProperties": False,
                                },
                            }
                        ]
                    }
                ],
            },
            'Unknown name "additionalProperties"',
        ),
        (
            {
                "contents": USER_HI,
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {"type": "object", "properties": {}},
                            }
                        ]
                    }
                ],
            },
            "should be non-empty for OBJECT type",
        ),
        (
            {
                "contents": [
                    *USER_HI,
                    {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "f", "args": {}}}],
                    },
                    {
                        "role": "user",
                        "parts": [{"functionResponse": {"name": "f", "response": {}}}]
                        * 2,
                    },
                ]
            },
            "number of function response parts",
        ),
    ],
    ids=[
        "unknown-field",
        "role",
        "schema-keyword",
        "empty-properties",
        "response-count",
    ],
)
def test_requests_gemini_rejects_get_400(fake_provider, client, body, message):
    response = generate(fake_provider, body)

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert message in response.json()["error"]["message"]


def test_missing_api_key_is_forbidden(fake_provider):
    response = httpx.post(
        fake_provider.url + "/v1beta/models/m:generateContent",
        json={"contents": USER_HI},
    )

    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_signature_is_base64_of_stable_bytes(client):
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True)
    )

    response = client.models.generate_content(
        model="gemini-2.5-flash", contents="think", config=config
    )

    last = response.candidates[0].content.parts[-1]
    expected = stable_id("sig-", "Echo: think", "Thinking about: think", "0")
    assert last.thought_signature == expected.encode()
    assert base64.b64encode(last.thought_signature).decode()
