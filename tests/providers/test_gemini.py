"""The gemini provider type end to end: the openai SDK through the gateway to the fake Gemini API."""

import base64
import json
import struct
from types import SimpleNamespace

import httpx
import openai
import pytest

from tests.providers.contract import ProviderContract
from tests.support.factories import make_connection, make_model, make_tenant

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    },
}
WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def gemini(fake_provider, gateway, db_rows):
    connection = make_connection("gemini", fake_provider.url, "gemini-key")
    setup = SimpleNamespace(
        chat=make_model(connection, "gemini-2.5-flash").name,
        embed=make_model(connection, "gemini-embedding-001", kind="embeddings").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    fake_provider.set_key("gemini", "gemini-key")
    gateway.refresh()
    return setup


@pytest.fixture
def client(gemini):
    return openai.OpenAI(
        base_url=gemini.gateway.openai_base, api_key=gemini.key, max_retries=0
    )


def upstream(fake_provider, suffix=":generateContent"):
    return [
        request for request in fake_provider.requests if request.path.endswith(suffix)
    ][-1]


def test_chat_completion_returns_echo(client, gemini, fake_provider):
    completion = client.chat.completions.create(
        model=gemini.chat, messages=[{"role": "user", "content": "hello there"}]
    )

    sent = upstream(fake_provider)
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == gemini.chat
    assert completion.usage.prompt_tokens == 2
    assert completion.usage.completion_tokens == 3
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "gemini-key"
    assert sent.json["contents"] == [
        {"role": "user", "parts": [{"text": "hello there"}]}
    ]


def test_system_messages_become_system_instruction(client, gemini, fake_provider):
    client.chat.completions.create(
        model=gemini.chat,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "again"},
        ],
    )

    sent = upstream(fake_provider).json
    assert sent["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in English."}]
    }
    assert [content["role"] for content in sent["contents"]] == [
        "user",
        "model",
        "user",
    ]


def test_sampling_options_go_to_generation_config(client, gemini, fake_provider):
    client.chat.completions.create(
        model=gemini.chat,
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=50,
        stop=["END"],
        seed=7,
    )

    config = upstream(fake_provider).json["generationConfig"]
    assert config == {
        "maxOutputTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "seed": 7,
        "stopSequences": ["END"],
    }


def test_streaming_chat_arrives_in_chunks_with_usage(client, gemini, fake_provider):
    stream = client.chat.completions.create(
        model=gemini.chat,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    sent = upstream(fake_provider, ":streamGenerateContent")
    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert text == "Echo: one two three"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][
        -1
    ] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 3
    assert chunks[-1].usage.completion_tokens == 4
    assert sent.query == {"alt": "sse"}


def test_stream_without_include_usage(client, gemini):
    chunks = list(
        client.chat.completions.create(
            model=gemini.chat, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_tool_call_and_result_round_trip(client, gemini, fake_provider):
    messages = [{"role": "user", "content": "please call lookup"}]

    first = client.chat.completions.create(
        model=gemini.chat, messages=messages, tools=[LOOKUP]
    )
    call = first.choices[0].message.tool_calls[0]
    declared = upstream(fake_provider).json["tools"][0]["functionDeclarations"][0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "a greeting"},
    ]
    second = client.chat.completions.create(
        model=gemini.chat, messages=messages, tools=[LOOKUP]
    )

    contents = upstream(fake_provider).json["contents"]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"word": "test"}
    assert declared["parameters"] == {
        "type": "object",
        "properties": {"word": {"type": "string"}},
        "required": ["word"],
    }
    assert contents[1]["role"] == "model"
    assert contents[1]["parts"][0]["functionCall"] == {
        "name": "lookup",
        "args": {"word": "test"},
    }
    assert contents[1]["parts"][0]["thoughtSignature"]
    assert contents[2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "lookup",
                    "response": {"output": "a greeting"},
                }
            }
        ],
    }
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Echo: please call lookup"


def test_thought_signature_returns_on_its_function_call(client, gemini, fake_provider):
    signature = "c2lnLXN5bnRoZXRpYy0wMQ=="
    fake_provider.enqueue(
        ":generateContent",
        {
            "json": {
                "candidates": [
                    {
                        "content": {
                            "role": "model",
                            "parts": [
                                {
                                    "functionCall": {
                                        "name": "lookup",
                                        "args": {"word": "a"},
                                    },
                                    "thoughtSignature": signature,
                                },
                                {
                                    "functionCall": {
                                        "name": "lookup",
                                        "args": {"word": "b"},
                                    }
                                },
                            ],
                        },
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4},
            }
        },
    )
    messages = [{"role": "user", "content": "look up a and b"}]

    first = client.chat.completions.create(
        model=gemini.chat, messages=messages, tools=[LOOKUP]
    )
    calls = first.choices[0].message.tool_calls
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": call.id, "content": '{"found": true}'}
        for call in calls
    ]
    client.chat.completions.create(model=gemini.chat, messages=messages, tools=[LOOKUP])

    model_turn, results = upstream(fake_provider).json["contents"][1:]
    assert len({call.id for call in calls}) == 2
    assert model_turn["parts"][0]["thoughtSignature"] == signature
    assert "thoughtSignature" not in model_turn["parts"][1]
    assert [part["functionResponse"]["response"] for part in results["parts"]] == [
        {"found": True},
        {"found": True},
    ]


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", None),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["weather"]},
        ),
    ],
)
def test_tool_choice_becomes_function_calling_config(
    client, gemini, fake_provider, tool_choice, expected
):
    client.chat.completions.create(
        model=gemini.chat,
        messages=[{"role": "user", "content": "hi"}],
        tools=[LOOKUP, WEATHER],
        tool_choice=tool_choice,
    )

    sent = upstream(fake_provider).json
    assert sent.get("toolConfig", {}).get("functionCallingConfig") == expected
    assert sent["tools"][0]["functionDeclarations"][1] == {"name": "weather"}


def test_parallel_tool_calls_stream_with_stable_indices(client, gemini):
    stream = client.chat.completions.create(
        model=gemini.chat,
        messages=[
            {
                "role": "user",
                "content": "please call lookup and call weather in parallel",
            }
        ],
        tools=[LOOKUP, WEATHER],
        stream=True,
    )
    deltas = [
        call
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]

    starts = [delta for delta in deltas if delta.id]
    arguments = {0: "", 1: ""}
    for delta in deltas:
        arguments[delta.index] += delta.function.arguments or ""
    assert [(delta.index, delta.function.name) for delta in starts] == [
        (0, "lookup"),
        (1, "weather"),
    ]
    assert all(delta.function.name is None for delta in deltas if not delta.id)
    assert json.loads(arguments[0]) == {"word": "test"}
    assert json.loads(arguments[1]) == {}


def test_images_become_inline_and_file_data(client, gemini, fake_provider):
    client.chat.completions.create(
        model=gemini.chat,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "https://example.com/cat.webp?size=2",
                            "detail": "low",
                        },
                    },
                ],
            }
        ],
    )

    parts = upstream(fake_provider).json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert parts[2] == {
        "fileData": {
            "mimeType": "image/webp",
            "fileUri": "https://example.com/cat.webp?size=2",
        }
    }


def test_json_object_response_format_sets_mime_type(client, gemini, fake_provider):
    client.chat.completions.create(
        model=gemini.chat,
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_object"},
    )

    config = upstream(fake_provider).json["generationConfig"]
    assert config == {"responseMimeType": "application/json"}


def test_json_schema_response_format_sends_the_inner_schema(
    client, gemini, fake_provider
):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": ["integer", "null"]},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }

    client.chat.completions.create(
        model=gemini.chat,
        messages=[{"role": "user", "content": "hi"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": schema},
        },
    )

    config = upstream(fake_provider).json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "nullable": True},
        },
        "required": ["name", "age"],
    }


def test_reasoning_effort_returns_thoughts_and_reasoning_tokens(
    client, gemini, fake_provider
):
    completion = client.chat.completions.create(
        model=gemini.chat,
        messages=[{"role": "user", "content": "think hard"}],
        reasoning_effort="low",
    )

    message = completion.choices[0].message
    assert upstream(fake_provider).json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }
    assert message.content == "Echo: think hard"
    assert message.model_extra["reasoning_content"] == "Thinking about: think hard"
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    assert completion.usage.completion_tokens == 4 + 3


def test_reasoning_streams_as_reasoning_content(client, gemini):
    chunks = list(
        client.chat.completions.create(
            model=gemini.chat,
            messages=[{"role": "user", "content": "think hard"}],
            reasoning_effort="medium",
            stream=True,
        )
    )

    reasoning = "".join(
        chunk.choices[0].delta.model_extra.get("reasoning_content") or ""
        for chunk in chunks
        if chunk.choices
    )
    assert reasoning == "Thinking about: think hard"


def test_cached_tokens_are_reported(client, gemini, fake_provider):
    fake_provider.enqueue(
        ":generateContent",
        {"reply": {"usage": {"input_tokens": 100, "cached_tokens": 60}}},
    )

    completion = client.chat.completions.create(
        model=gemini.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.usage.prompt_tokens == 100
    assert completion.usage.prompt_tokens_details.cached_tokens == 60


@pytest.mark.parametrize(
    ("status", "google_status", "error_class"),
    [
        (400, "INVALID_ARGUMENT", openai.BadRequestError),
        (429, "RESOURCE_EXHAUSTED", openai.RateLimitError),
        (500, "INTERNAL", openai.InternalServerError),
        (503, "UNAVAILABLE", openai.InternalServerError),
    ],
)
def test_upstream_errors_keep_their_status(
    client, gemini, fake_provider, status, google_status, error_class
):
    fake_provider.enqueue(
        ":generateContent",
        {"status": status, "error": {"type": google_status, "message": "Scripted."}},
    )

    with pytest.raises(error_class) as caught:
        client.chat.completions.create(
            model=gemini.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == status
    assert "Scripted." in caught.value.message


def test_overloaded_gemini_reads_as_overloaded(client, gemini, fake_provider):
    fake_provider.enqueue(
        ":generateContent",
        {
            "status": 503,
            "error": {"type": "UNAVAILABLE", "message": "The model is overloaded."},
        },
    )

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model=gemini.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.body["type"] == "overloaded_error"


def test_invalid_gemini_key_reads_as_authentication_error(
    client, gemini, fake_provider
):
    fake_provider.set_key("gemini", "another-key")

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model=gemini.chat, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 401


def test_schema_the_api_rejects_is_rewritten(client, gemini, fake_provider):
    nested = {
        "type": "function",
        "function": {
            "name": "plan",
            "parameters": {
                "type": "object",
                "$defs": {
                    "step": {
                        "type": "object",
                        "properties": {"title": {"type": "string", "format": "uri"}},
                    }
                },
                "properties": {
                    "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
                    "mode": {"const": "fast"},
                    "level": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                    "extra": {"type": "object", "properties": {}},
                },
                "required": ["steps", "missing"],
            },
        },
    }

    completion = client.chat.completions.create(
        model=gemini.chat, messages=[{"role": "user", "content": "hi"}], tools=[nested]
    )

    parameters = upstream(fake_provider).json["tools"][0]["functionDeclarations"][0][
        "parameters"
    ]
    assert completion.choices[0].message.content == "Echo: hi"
    assert parameters == {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}},
                },
            },
            "mode": {"enum": ["fast"]},
            "level": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "extra": {"type": "object"},
        },
        "required": ["steps"],
    }


def test_embeddings_float_and_base64(client, gemini, fake_provider):
    floats = client.embeddings.create(
        model=gemini.embed, input=["hello world", "b"], encoding_format="float"
    )
    default = client.embeddings.create(model=gemini.embed, input=["hello world", "b"])

    sent = upstream(fake_provider, ":batchEmbedContents").json
    assert len(floats.data) == 2
    assert len(floats.data[0].embedding) == 8
    assert default.data[0].embedding == pytest.approx(
        floats.data[0].embedding, rel=1e-6
    )
    assert floats.usage.prompt_tokens >= 2
    assert "encoding_format" not in json.dumps(sent)
    assert sent["requests"][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "hello world"}]},
    }


def test_embeddings_dimensions_become_output_dimensionality(
    client, gemini, fake_provider
):
    response = client.embeddings.create(
        model=gemini.embed, input="hi", dimensions=4, encoding_format="float"
    )

    sent = upstream(fake_provider, ":batchEmbedContents").json
    assert sent["requests"][0]["outputDimensionality"] == 4
    assert len(response.data[0].embedding) == 4


def test_embeddings_base64_from_gemini_values(gemini, fake_provider):
    fake_provider.enqueue(
        ":batchEmbedContents",
        {"json": {"embeddings": [{"values": [0.5, -1.0, 0.25, 2.0]}]}},
    )

    response = httpx.post(
        gemini.gateway.openai_base + "/embeddings",
        headers={"authorization": f"Bearer {gemini.key}"},
        json={
            "model": gemini.embed,
            "input": ["hello world"],
            "encoding_format": "base64",
        },
    )

    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "list"
    assert body["model"] == gemini.embed
    assert body["data"][0]["embedding"] == "AAAAPwAAgL8AAIA+AAAAQA=="
    assert list(
        struct.unpack("<4f", base64.b64decode(body["data"][0]["embedding"]))
    ) == [0.5, -1.0, 0.25, 2.0]
    assert body["usage"]["prompt_tokens"] >= 1


def test_embeddings_int8_is_rejected_before_the_upstream(gemini, fake_provider):
    response = httpx.post(
        gemini.gateway.openai_base + "/embeddings",
        headers={"authorization": f"Bearer {gemini.key}"},
        json={
            "model": gemini.embed,
            "input": ["hello world"],
            "encoding_format": "int8",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not [
        request
        for request in fake_provider.requests
        if request.path.endswith(":batchEmbedContents")
    ]


class TestGeminiContract(ProviderContract):
    provider_type = "gemini"
    upstream_model = "gemini-2.5-flash"
    embeddings_model = "gemini-embedding-001"
    credential = "gemini-key"
    chat_path = ":generateContent"

    def base_url(self, fake_provider):
        return fake_provider.url

    def prepare(self, fake_provider):
        fake_provider.set_key("gemini", "gemini-key")
