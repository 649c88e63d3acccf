"""OpenAI-compatible vendor rows: the shared contract per row, and each row's rewrites."""

import openai
import orjson
import pytest

from nexus.engine.canonical import validate_chat_body, validate_embeddings_body
from nexus.engine.errors import InvalidRequestError
from nexus.engine.providers.base import OptionsError
from nexus.engine.providers.registry import PROVIDER_TYPES
from nexus.engine.snapshot import ConnectionEntry
from tests.providers.contract import ProviderContract
from tests.support.factories import make_connection, make_model, make_tenant

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


class TestDeepSeekContract(ProviderContract):
    provider_type = "deepseek"
    upstream_model = "deepseek-reasoner"
    chat_path = "/deepseek/chat/completions"

    def base_url(self, fake_provider):
        return fake_provider.url + "/deepseek"


class TestMoonshotContract(ProviderContract):
    provider_type = "moonshot"
    upstream_model = "kimi-k2-0905-preview"


class TestMistralContract(ProviderContract):
    provider_type = "mistral"
    upstream_model = "mistral-large-latest"
    embeddings_model = "mistral-embed"
    chat_path = "/mistral/v1/chat/completions"

    def base_url(self, fake_provider):
        return fake_provider.url + "/mistral/v1"


class TestGroqContract(ProviderContract):
    provider_type = "groq"
    upstream_model = "llama-3.3-70b-versatile"
    chat_path = "/groq/openai/v1/chat/completions"

    def base_url(self, fake_provider):
        return fake_provider.url + "/groq/openai/v1"


class TestFireworksContract(ProviderContract):
    provider_type = "fireworks"
    upstream_model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
    embeddings_model = "nomic-ai/nomic-embed-text-v1.5"


class TestTogetherContract(ProviderContract):
    provider_type = "together"
    upstream_model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    embeddings_model = "BAAI/bge-base-en-v1.5"


class TestPerplexityContract(ProviderContract):
    provider_type = "perplexity"
    upstream_model = "sonar"
    supports_tools = False
    chat_path = "/perplexity/chat/completions"

    def base_url(self, fake_provider):
        return fake_provider.url + "/perplexity"


class TestXAIContract(ProviderContract):
    provider_type = "xai"
    upstream_model = "grok-3-mini"


class TestHuggingFaceContract(ProviderContract):
    provider_type = "huggingface"
    upstream_model = "meta-llama/Llama-3.1-8B-Instruct"


class TestOpenAICompatibleContract(ProviderContract):
    provider_type = "openai_compatible"
    upstream_model = "local-model"
    embeddings_model = "local-embed"


def adapter(provider_type, base_url="", credential="sk-test", options=None):
    connection = ConnectionEntry(
        id=1,
        name=f"{provider_type}-test",
        provider_type=provider_type,
        base_url=base_url,
        credential=credential,
        options=options or {},
    )
    return PROVIDER_TYPES[provider_type](connection)


def outgoing(provider_type, body, upstream_model="m", **kwargs):
    request = validate_chat_body({"model": "public", **body})
    built = adapter(provider_type, **kwargs).build_chat_request(request, upstream_model)
    return built, orjson.loads(built.body)


def hello(**fields):
    return {"messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.mark.parametrize(
    ("provider_type", "url"),
    [
        ("deepseek", "https://api.deepseek.com/chat/completions"),
        ("moonshot", "https://api.moonshot.ai/v1/chat/completions"),
        ("mistral", "https://api.mistral.ai/v1/chat/completions"),
        ("groq", "https://api.groq.com/openai/v1/chat/completions"),
        ("fireworks", "https://api.fireworks.ai/inference/v1/chat/completions"),
        ("together", "https://api.together.xyz/v1/chat/completions"),
        ("perplexity", "https://api.perplexity.ai/chat/completions"),
        ("xai", "https://api.x.ai/v1/chat/completions"),
        ("huggingface", "https://router.huggingface.co/v1/chat/completions"),
    ],
)
def test_default_base_urls(provider_type, url):
    built, _ = outgoing(provider_type, hello())

    assert built.url == url
    assert built.headers["authorization"] == "Bearer sk-test"


def test_openai_compatible_needs_base_url():
    with pytest.raises(OptionsError, match="base_url"):
        adapter("openai_compatible")


def test_openai_compatible_custom_auth_header():
    options = {"auth_header": "api-key", "auth_scheme": "", "drop_params": ["user"]}

    built, body = outgoing(
        "openai_compatible",
        hello(user="u1"),
        base_url="http://llm.local/v1/",
        options=options,
    )

    assert built.url == "http://llm.local/v1/chat/completions"
    assert built.headers["api-key"] == "sk-test"
    assert "authorization" not in built.headers
    assert "user" not in body


def test_openai_compatible_rejects_unknown_option():
    with pytest.raises(OptionsError, match="Known options"):
        adapter("openai_compatible", base_url="http://x/v1", options={"auth": "x"})


def test_openai_compatible_without_stream_options():
    _, body = outgoing(
        "openai_compatible",
        hello(stream=True),
        base_url="http://llm.local/v1",
        options={"stream_options": False},
    )

    assert "stream_options" not in body


def test_deepseek_reasoner_drops_rejected_parameters():
    fields = hello(logprobs=True, top_logprobs=2, temperature=0.3, top_p=0.5)

    _, reasoner = outgoing("deepseek", fields, "deepseek-reasoner")
    _, chat = outgoing("deepseek", fields, "deepseek-chat")

    for name in ("logprobs", "top_logprobs", "temperature", "top_p"):
        assert name not in reasoner
        assert name in chat


def test_deepseek_stream_asks_for_usage():
    _, body = outgoing("deepseek", hello(stream=True))

    assert body["stream_options"] == {"include_usage": True}


def test_moonshot_clamps_temperature_and_top_p():
    _, body = outgoing("moonshot", hello(temperature=1.7, top_p=0.4))

    assert body["temperature"] == 1.0
    assert body["top_p"] == 0.4


def test_moonshot_rejects_more_than_five_choices():
    _, body = outgoing("moonshot", hello(n=5))

    with pytest.raises(InvalidRequestError, match="at most 5"):
        outgoing("moonshot", hello(n=6))
    assert body["n"] == 5


def test_mistral_renames_token_limit_and_seed():
    _, body = outgoing("mistral", hello(max_completion_tokens=20, seed=7))

    assert body["max_tokens"] == 20
    assert body["random_seed"] == 7
    assert "max_completion_tokens" not in body
    assert "seed" not in body


def test_mistral_keeps_an_explicit_max_tokens():
    _, body = outgoing("mistral", hello(max_tokens=10, max_completion_tokens=20))

    assert body["max_tokens"] == 10


def test_mistral_sends_only_parameters_it_defines():
    fields = hello(
        stream=True,
        user="u1",
        logprobs=True,
        store=True,
        temperature=0.2,
        tools=[TOOL],
        parallel_tool_calls=False,
    )

    _, body = outgoing("mistral", fields)

    assert "stream_options" not in body
    assert "user" not in body
    assert "logprobs" not in body
    assert "store" not in body
    assert body["temperature"] == 0.2
    assert body["tools"] == [TOOL]
    assert body["parallel_tool_calls"] is False


def test_mistral_strips_message_fields_it_rejects():
    messages = [
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "yo", "refusal": None, "annotations": []},
        {"role": "user", "content": "again"},
    ]

    _, body = outgoing("mistral", {"messages": messages})

    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "again"},
    ]
    assert messages[0]["name"] == "ann"


def test_mistral_embeddings_rename_dimensions():
    request = validate_embeddings_body(
        {"model": "public", "input": ["a"], "dimensions": 256}
    )

    built = adapter("mistral").build_embeddings_request(request, "mistral-embed")

    payload = orjson.loads(built.body)
    assert payload["output_dimension"] == 256
    assert "dimensions" not in payload
    assert built.url == "https://api.mistral.ai/v1/embeddings"


def test_chat_only_vendor_rejects_embeddings():
    request = validate_embeddings_body({"model": "public", "input": ["a"]})

    with pytest.raises(InvalidRequestError, match="does not serve embeddings"):
        adapter("groq").build_embeddings_request(request, "m")


def test_groq_drops_unsupported_fields():
    messages = [{"role": "user", "content": "hi", "name": "ann"}]
    fields = {"messages": messages, "logprobs": True, "top_logprobs": 1}

    _, body = outgoing("groq", {**fields, "logit_bias": {"1": 2}, "stream": True})

    assert "logprobs" not in body
    assert "top_logprobs" not in body
    assert "logit_bias" not in body
    assert "stream_options" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_groq_rejects_more_than_one_choice():
    with pytest.raises(InvalidRequestError, match="at most 1"):
        outgoing("groq", hello(n=2))


def test_perplexity_rejects_tools():
    with pytest.raises(InvalidRequestError, match="does not support tools") as caught:
        outgoing("perplexity", hello(tools=[TOOL]))

    assert caught.value.param == "tools"


def test_perplexity_leaves_out_forbidden_tools():
    _, body = outgoing("perplexity", hello(tools=[TOOL], tool_choice="none"))

    assert "tools" not in body
    assert "tool_choice" not in body


def test_perplexity_sends_json_object_as_schema():
    _, body = outgoing("perplexity", hello(response_format={"type": "json_object"}))

    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "json_object", "schema": {"type": "object"}},
    }


def test_perplexity_renames_token_limit_and_skips_stream_options():
    _, body = outgoing("perplexity", hello(max_completion_tokens=30, stream=True))

    assert body["max_tokens"] == 30
    assert "stream_options" not in body


@pytest.mark.parametrize(
    ("model", "dropped"),
    [
        ("grok-3-mini", True),
        ("grok-4-0709", True),
        ("grok-code-fast-1", True),
        ("grok-4-fast-non-reasoning", False),
        ("grok-2-1212", False),
    ],
)
def test_xai_reasoning_models_drop_penalties_and_stop(model, dropped):
    fields = hello(presence_penalty=0.5, frequency_penalty=0.5, stop=["x"])

    _, body = outgoing("xai", fields, model)

    for name in ("presence_penalty", "frequency_penalty", "stop"):
        assert (name not in body) is dropped, name


def sse(*chunks):
    events = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    return b"".join(events) + b"data: [DONE]\n\n"


def chunk(delta, finish_reason=None, **extra):
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [choice], **extra}


def decode(provider_type, data, **kwargs):
    request = validate_chat_body(hello(model="public", stream=True))
    decoder = adapter(provider_type, **kwargs).chat_stream_decoder(request)
    chunks = decoder.feed(data) + decoder.finish()
    return decoder, chunks


def test_groq_reasoning_field_becomes_reasoning_content():
    data = sse(
        chunk({"role": "assistant", "reasoning": "thinking"}),
        chunk({"content": "answer"}),
        chunk(
            {}, "stop", x_groq={"usage": {"prompt_tokens": 3, "completion_tokens": 2}}
        ),
    )

    decoder, chunks = decode("groq", data)

    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "reasoning_content": "thinking",
    }
    assert chunks[-1] == {
        "id": "c1",
        "object": "chat.completion.chunk",
        "x_groq": {"usage": {"prompt_tokens": 3, "completion_tokens": 2}},
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    assert "usage" not in chunks[-2]
    assert (decoder.usage.input_tokens, decoder.usage.output_tokens) == (3, 2)
    assert decoder.finished


def test_deepseek_reasoning_content_passes_through():
    data = sse(chunk({"reasoning_content": "hmm"}), chunk({}, "stop"))

    _, chunks = decode("deepseek", data)

    assert chunks[0]["choices"][0]["delta"] == {"reasoning_content": "hmm"}


def test_mistral_thinking_chunks_split_into_reasoning_and_text():
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "first "}]}
    data = sse(
        chunk({"role": "assistant", "content": [thinking]}),
        chunk({"content": [{"type": "text", "text": "done"}]}),
        chunk({}, "stop", usage={"prompt_tokens": 4, "completion_tokens": 3}),
    )

    decoder, chunks = decode("mistral", data)

    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "first ",
    }
    assert chunks[1]["choices"][0]["delta"] == {"content": "done"}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert decoder.usage.output_tokens == 3


def test_mistral_thinking_chunks_in_a_complete_answer():
    answer = {
        "id": "m1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "thinking",
                            "thinking": [{"type": "text", "text": "t"}],
                        },
                        {"type": "text", "text": "final"},
                    ],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }
    request = validate_chat_body(hello(model="public"))

    result = adapter("mistral").parse_chat_response(orjson.dumps(answer), request)

    message = result.body["choices"][0]["message"]
    assert message["content"] == "final"
    assert message["reasoning_content"] == "t"


def test_openai_compatible_reads_reasoning_field():
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x", "reasoning": "why"},
                "finish_reason": "eos",
            }
        ]
    }
    request = validate_chat_body(hello(model="public"))

    result = adapter("openai_compatible", base_url="http://l/v1").parse_chat_response(
        orjson.dumps(answer), request
    )

    choice = result.body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "x",
        "reasoning_content": "why",
    }
    assert choice["finish_reason"] == "stop"


def test_groq_usage_in_x_groq_of_a_complete_answer():
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x"},
                "finish_reason": "stop",
            }
        ],
        "x_groq": {"usage": {"prompt_tokens": 5, "completion_tokens": 1}},
    }
    request = validate_chat_body(hello(model="public"))

    result = adapter("groq").parse_chat_response(orjson.dumps(answer), request)

    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 1)


def test_validation_error_body_becomes_readable_message():
    body = {
        "object": "error",
        "message": {"detail": [{"type": "extra_forbidden", "loc": ["body", "user"]}]},
        "type": "invalid_request_error",
    }

    error = adapter("mistral").parse_error(422, orjson.dumps(body))

    assert error.status == 422
    assert error.type == "invalid_request_error"
    assert "extra_forbidden" in error.message


@pytest.fixture
def vendors(fake_provider, gateway, db_rows):
    models = {}
    for provider_type, prefix, upstream in [
        ("mistral", "/mistral/v1", "magistral-small-latest"),
        ("perplexity", "/perplexity", "sonar-pro"),
        ("groq", "/groq/openai/v1", "qwen/qwen3-32b"),
        ("deepseek", "/deepseek", "deepseek-reasoner"),
    ]:
        connection = make_connection(provider_type, fake_provider.url + prefix)
        models[provider_type] = make_model(connection, upstream).name
    tenant = make_tenant()
    gateway.refresh()
    client = openai.OpenAI(
        base_url=gateway.openai_base, api_key=tenant.key, max_retries=0
    )
    return client, models


def test_mistral_rewrites_reach_the_upstream(vendors, fake_provider):
    client, models = vendors

    list(
        client.chat.completions.create(
            model=models["mistral"],
            messages=[{"role": "user", "content": "hi", "name": "ann"}],
            max_completion_tokens=50,
            seed=3,
            user="someone",
            stream=True,
        )
    )

    sent = fake_provider.requests[-1].json
    assert sent["model"] == "magistral-small-latest"
    assert sent["max_tokens"] == 50
    assert sent["random_seed"] == 3
    assert "user" not in sent
    assert "stream_options" not in sent
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


def test_perplexity_tools_answer_400(vendors, fake_provider):
    client, models = vendors

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=models["perplexity"],
            messages=[{"role": "user", "content": "call lookup"}],
            tools=[TOOL],
        )

    assert caught.value.body["param"] == "tools"
    assert "does not support tools" in caught.value.body["message"]
    assert fake_provider.requests == []


def streamed_reasoning_and_text(chunks):
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return reasoning, text


@pytest.mark.parametrize("provider_type", ["groq", "mistral", "deepseek"])
def test_streamed_reasoning_reaches_the_sdk(vendors, provider_type):
    client, models = vendors

    chunks = list(
        client.chat.completions.create(
            model=models[provider_type],
            messages=[{"role": "user", "content": "two plus two"}],
            reasoning_effort="low",
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    reasoning, text = streamed_reasoning_and_text(chunks)
    assert reasoning == "Thinking about: two plus two"
    assert text == "Echo: two plus two"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 5


@pytest.mark.parametrize("provider_type", ["groq", "mistral", "deepseek"])
def test_reasoning_in_a_complete_answer_reaches_the_sdk(vendors, provider_type):
    client, models = vendors

    completion = client.chat.completions.create(
        model=models[provider_type],
        messages=[{"role": "user", "content": "two plus two"}],
        reasoning_effort="low",
    )

    message = completion.choices[0].message
    assert message.content == "Echo: two plus two"
    assert message.model_extra["reasoning_content"] == "Thinking about: two plus two"
    assert completion.usage.prompt_tokens > 0


def test_groq_rejected_fields_never_reach_it(vendors, fake_provider):
    client, models = vendors

    completion = client.chat.completions.create(
        model=models["groq"],
        messages=[{"role": "user", "content": "hi", "name": "ann"}],
        logprobs=True,
        top_logprobs=2,
    )

    assert completion.choices[0].message.content == "Echo: hi"
    sent = fake_provider.requests[-1].json
    assert "logprobs" not in sent
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


def test_deepseek_reasoner_logprobs_are_left_out(vendors, fake_provider):
    client, models = vendors

    completion = client.chat.completions.create(
        model=models["deepseek"],
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
    )

    assert completion.choices[0].message.content == "Echo: hi"
    assert "logprobs" not in fake_provider.requests[-1].json


def test_perplexity_json_object_is_sent_as_schema(vendors, fake_provider):
    client, models = vendors

    completion = client.chat.completions.create(
        model=models["perplexity"],
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
    )

    assert completion.choices[0].finish_reason == "stop"
    sent = fake_provider.requests[-1].json
    assert sent["response_format"]["type"] == "json_schema"
