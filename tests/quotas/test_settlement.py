"""Each request settles to what it used: complete, cut off, failed or hung up."""

import asyncio

import httpx
import orjson
import pytest
import redis
from django.conf import settings

from nexus.engine.quotas import estimate
from nexus.engine.quotas.rules import ledger_keys
from tests.quotas.conftest import counter_value, quota_stage
from tests.quotas.factories import make_quota
from tests.support.factories import make_connection, make_model
from tests.support.waiting import wait_for

LONG_REPLY = " ".join(f"word{index}" for index in range(40))


def stream_body(setup, content="hello world", **body):
    return {
        "model": setup.model.name,
        "stream": True,
        "messages": [{"role": "user", "content": content}],
        **body,
    }


def streamed_text(raw: bytes) -> str:
    text = []
    for line in raw.decode().splitlines():
        if not line.startswith("data: {"):
            continue
        for choice in orjson.loads(line[6:]).get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)


def output_tokens(text: str, model: str = "gpt-4o-mini") -> int:
    count = asyncio.run(estimate.count_texts(model, [text]))
    return count.tokens


def open_reservations(setup) -> int:
    """Return how many reservations of the tenant are still open in the store."""
    stage = quota_stage(setup.gateway)
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            return client.hlen(ledger_keys(setup.org.pk)[0])
        finally:
            client.close()
    return len(stage.backend.ledger)


def test_complete_answer_settles_to_reported_usage(quota_setup):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()

    response = quota_setup.chat("hello world", max_tokens=50)

    [row] = quota_setup.audit_rows()
    assert response.status_code == 200
    assert row.usage_reported
    assert row.details["quotas"]["estimated"] is False
    assert row.details["quotas"]["estimate"]["tokens"] > row.input_tokens + 50
    assert row.details["quotas"]["charged"]["tokens"] == 5
    assert counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk) == 5
    assert open_reservations(quota_setup) == 0


def test_stream_cut_off_early_settles_on_text_produced(quota_setup):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    quota_setup.fake.enqueue(
        "/chat/completions", {"reply": {"text": LONG_REPLY}, "close_after": 6}
    )

    response = quota_setup.client.post(
        f"{quota_setup.gateway.url}/v1/chat/completions",
        json=stream_body(quota_setup, max_tokens=100),
        headers={"authorization": f"Bearer {quota_setup.key}"},
    )

    [row] = quota_setup.audit_rows()
    produced = streamed_text(response.content)
    reserved = row.details["quotas"]["estimate"]["tokens"]
    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    assert response.status_code == 200
    assert produced and produced != "Echo: " + LONG_REPLY
    assert row.usage_reported is False
    assert row.details["quotas"]["estimated"] is True
    assert row.input_tokens == reserved - 100
    assert row.output_tokens == output_tokens(produced)
    assert charged == row.input_tokens + row.output_tokens
    assert open_reservations(quota_setup) == 0


def test_upstream_error_releases_reservation(quota_setup):
    tokens = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    requests = make_quota(
        quota_setup.org, unit="requests", window="minute", hard_limit=100
    )
    quota_setup.refresh()
    for _ in range(5):
        quota_setup.fake.enqueue(
            "/chat/completions", {"error": "server_error", "status": 500}
        )

    response = quota_setup.chat(max_tokens=100)

    [row] = quota_setup.audit_rows()
    key = quota_setup.key_row.pk
    assert response.status_code >= 500
    assert row.details["quotas"]["charged"]["tokens"] == 0
    assert counter_value(quota_setup.gateway, tokens, key=key) == 0
    assert counter_value(quota_setup.gateway, requests, key=key) == 1
    assert open_reservations(quota_setup) == 0


def test_client_disconnect_settles_on_text_produced(quota_setup):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    quota_setup.fake.enqueue(
        "/chat/completions", {"reply": {"text": LONG_REPLY}, "chunk_delay": 0.1}
    )
    received = b""

    with httpx.Client(timeout=30) as client:
        with client.stream(
            "POST",
            f"{quota_setup.gateway.url}/v1/chat/completions",
            json=stream_body(quota_setup, max_tokens=100),
            headers={"authorization": f"Bearer {quota_setup.key}"},
        ) as response:
            for data in response.iter_bytes():
                received += data
                if b"word2" in received:
                    break
    wait_for(
        lambda: (
            len(quota_setup.audit_rows()) == 1 and open_reservations(quota_setup) == 0
        )
    )

    [row] = quota_setup.audit_rows()
    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    assert row.status_code == 499
    assert row.details["quotas"]["estimated"] is True
    assert 3 <= row.output_tokens < output_tokens("Echo: " + LONG_REPLY)
    assert charged == row.input_tokens + row.output_tokens
    assert open_reservations(quota_setup) == 0


@pytest.mark.parametrize(
    "stream_options", [None, {"include_usage": False}, {"include_usage": True}]
)
def test_usage_only_stream_chunk_is_charged(quota_setup, stream_options):
    quota = make_quota(quota_setup.org, unit="tokens", window="hour", hard_limit=1000)
    quota_setup.refresh()
    body = stream_body(quota_setup, "Say hello.")
    if stream_options is not None:
        body["stream_options"] = stream_options
    quota_setup.fake.enqueue("/chat/completions", {"sse": WITH_USAGE})

    response = quota_setup.client.post(
        f"{quota_setup.gateway.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {quota_setup.key}"},
    )

    [row] = quota_setup.audit_rows()
    assert response.status_code == 200
    assert quota_setup.fake.requests[0].json["stream_options"]["include_usage"] is True
    assert row.usage_reported
    assert row.details["quotas"]["estimated"] is False
    assert row.details["quotas"]["charged"]["tokens"] == 11
    assert counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk) == 11


WITH_USAGE = (
    "".join(
        f"data: {orjson.dumps(chunk).decode()}\n\n"
        for chunk in [
            {
                "id": "chatcmpl-usage",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
                "usage": None,
            },
            {
                "id": "chatcmpl-usage",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": "Hello there"},
                        "finish_reason": None,
                    }
                ],
                "usage": None,
            },
            {
                "id": "chatcmpl-usage",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": None,
            },
            {
                "id": "chatcmpl-usage",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [],
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": 2,
                    "total_tokens": 11,
                },
            },
        ]
    )
    + "data: [DONE]\n\n"
)


def test_three_stream_variants_use_33_of_1000_tokens(fake_provider, gateway, db_rows):
    from apps.quotas.selectors import list_quota_usage
    from tests.quotas.conftest import QuotaSetup

    setup = QuotaSetup(fake_provider, gateway, input_price="0.15", output_price="0.6")
    quota = make_quota(setup.org, unit="tokens", window="hour", hard_limit=1000)
    setup.refresh()
    variants = [None, {"include_usage": False}, {"include_usage": True}]
    streams = []

    for stream_options in variants:
        fake_provider.enqueue("/chat/completions", {"sse": WITH_USAGE})
        body = stream_body(setup, "Say hello.")
        if stream_options is not None:
            body["stream_options"] = stream_options
        response = setup.client.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {setup.key}"},
        )
        streams.append(response.content.decode())
        # Without max_tokens a request reserves all that is left of the 1000 tokens
        # until it settles, which happens just after its response ends.
        gateway.flush_audit()

    rows = setup.audit_rows()
    [usage] = list_quota_usage(quota)
    assert [streamed_text(raw.encode()) for raw in streams] == ["Hello there"] * 3
    assert ['"choices":[]' in raw for raw in streams] == [False, False, True]
    assert [row.cost_nano_usd for row in rows] == [2550] * 3
    assert [row.details["quotas"]["charged"]["usd"] for row in rows] == [2550] * 3
    assert [row.details["quotas"]["charged"]["tokens"] for row in rows] == [11] * 3
    assert counter_value(gateway, quota, key=setup.key_row.pk) == 33
    assert usage.used == 33
    assert usage.remaining == 967
    setup.client.close()


def test_embeddings_request_is_charged_its_input(fake_provider, gateway, db_rows):
    from tests.support.factories import make_connection, make_model, make_tenant

    connection = make_connection("openai", fake_provider.openai_base)
    model = make_model(
        connection, "text-embedding-3-small", kind="embeddings", input_price="0.02"
    )
    tenant = make_tenant()
    quota = make_quota(tenant.org, unit="tokens", hard_limit=1000)
    gateway.refresh()

    response = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": model.name, "input": ["one two three", "four five"]},
        headers={"authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )
    gateway.flush_audit()

    assert response.status_code == 200
    assert counter_value(gateway, quota, key=tenant.key_row.pk) == 5


def anthropic_text(raw: bytes) -> str:
    text = []
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            delta = orjson.loads(line[6:]).get("delta") or {}
            text.append(delta.get("text") or "")
    return "".join(text)


def test_cut_passthrough_stream_charges_text(quota_setup):
    # Anthropic to Anthropic passes the provider's bytes through; its stream reports
    # output tokens only at the end, which a cut-off stream never reaches.
    connection = make_connection("anthropic", quota_setup.fake.anthropic_base)
    claude = make_model(connection, "claude-sonnet-4-5")
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    quota_setup.fake.enqueue(
        "/v1/messages", {"reply": {"text": LONG_REPLY}, "close_after": 14}
    )

    response = quota_setup.client.post(
        f"{quota_setup.gateway.url}/v1/messages",
        json={
            "model": claude.name,
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hello world"}],
        },
        headers={"x-api-key": quota_setup.key, "anthropic-version": "2023-06-01"},
    )

    [row] = quota_setup.audit_rows()
    produced = anthropic_text(response.content)
    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    assert response.status_code == 200
    assert produced and produced != "Echo: " + LONG_REPLY
    assert row.details["quotas"]["estimated"] is True
    assert row.output_tokens == output_tokens(produced, claude.upstream_model)
    assert charged == row.input_tokens + row.output_tokens
    assert open_reservations(quota_setup) == 0


def responses_text(raw: bytes) -> str:
    text = []
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            event = orjson.loads(line[6:])
            if event.get("type") == "response.output_text.delta":
                text.append(event["delta"])
    return "".join(text)


def test_cut_responses_stream_charges_text(
    quota_setup,
):
    quota = make_quota(quota_setup.org, unit="tokens", hard_limit=10_000)
    quota_setup.refresh()
    quota_setup.fake.enqueue(
        "/v1/responses", {"reply": {"text": LONG_REPLY}, "close_after": 14}
    )

    response = quota_setup.client.post(
        f"{quota_setup.gateway.url}/v1/responses",
        json={"model": quota_setup.model.name, "input": "hello", "stream": True},
        headers={"authorization": f"Bearer {quota_setup.key}"},
    )

    [row] = quota_setup.audit_rows()
    produced = responses_text(response.content)
    charged = counter_value(quota_setup.gateway, quota, key=quota_setup.key_row.pk)
    assert response.status_code == 200
    assert produced and produced != LONG_REPLY
    assert row.details["quotas"]["estimated"] is True
    assert row.output_tokens == output_tokens(produced)
    assert charged == row.input_tokens + row.output_tokens
    assert open_reservations(quota_setup) == 0
