"""Streams ask the provider for usage but pass the usage chunk only to callers who asked."""

import openai
import pytest

from apps.audit.models import AuditEvent
from tests.cases.loader import load_case

CASE = load_case(13)


@pytest.fixture
def client(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


def script_upstream(fake_provider) -> None:
    fake_provider.enqueue(
        "/chat/completions",
        {"status": 200, "sse": CASE["upstream_response"]["with_usage"]["sse"]},
    )


@pytest.mark.parametrize("options", [None, {"include_usage": False}])
def test_usage_chunk_hidden_from_callers_who_did_not_ask(
    client, setup, fake_provider, options
):
    script_upstream(fake_provider)
    extra = {"stream_options": options} if options is not None else {}

    response = client.chat.completions.with_raw_response.create(
        model=setup.chat,
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        **extra,
    )
    chunks = list(response.parse())

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello there"
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert fake_provider.requests[-1].json["stream_options"]["include_usage"] is True
    setup.gateway.flush_audit()
    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert (event.input_tokens, event.output_tokens) == (9, 2)
    assert event.usage_reported is True


def test_usage_chunk_sent_to_callers_who_asked(client, setup, fake_provider):
    script_upstream(fake_provider)

    chunks = list(
        client.chat.completions.create(
            model=setup.chat,
            messages=[{"role": "user", "content": "Say hello."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 9
    assert chunks[-1].usage.completion_tokens == 2
    assert chunks[-1].usage.total_tokens == 11


def test_other_stream_options_are_kept(client, setup, fake_provider):
    script_upstream(fake_provider)

    list(
        client.chat.completions.create(
            model=setup.chat,
            messages=[{"role": "user", "content": "Say hello."}],
            stream=True,
            stream_options={"include_usage": False, "include_obfuscation": False},
        )
    )

    assert fake_provider.requests[-1].json["stream_options"] == {
        "include_usage": True,
        "include_obfuscation": False,
    }


def test_cost_is_charged_from_reported_usage(client, setup, fake_provider):
    script_upstream(fake_provider)

    response = client.chat.completions.with_raw_response.create(
        model=setup.chat,
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
    )
    list(response.parse())
    setup.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    # 9 x 0.15 USD/M + 2 x 0.60 USD/M = 2.55e-06 USD = 2550 nano-USD
    assert event.cost_nano_usd == 2550
