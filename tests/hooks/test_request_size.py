"""The size hook: bodies up to its limit pass whole, larger ones get 413 before upstream.

The gateway's own body limit is tested with the gateway; this covers the per-policy
limit a size hook sets below it.
"""

import hashlib

import httpx
import pytest

LIMIT = 32_768


@pytest.fixture
def limited(policy):
    return policy.add("size", "request", options={"max_body_bytes": LIMIT})


def padded_body(model: str, size: int) -> bytes:
    """Return a chat body of exactly size bytes."""
    prefix = (
        b'{"model":"' + model.encode() + b'","messages":[{"role":"user","content":"'
    )
    suffix = b'"}]}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


@pytest.fixture
def http(setup):
    with httpx.Client(base_url=setup.gateway.url, timeout=60) as client:
        yield client


def test_body_at_the_limit_passes_whole(http, setup, limited, fake_provider):
    body = padded_body(setup.chat, LIMIT)

    response = http.post(
        "/v1/chat/completions",
        content=body,
        headers={
            "authorization": f"Bearer {setup.key}",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 200
    sent = fake_provider.requests[-1].json["messages"][0]["content"]
    text = body.split(b'"content":"')[1][: -len('"}]}')].decode()
    assert (
        hashlib.sha256(sent.encode()).hexdigest()
        == hashlib.sha256(text.encode()).hexdigest()
    )


def test_body_over_the_limit_gets_413_in_openai_shape(
    http, setup, limited, fake_provider
):
    before = len(fake_provider.requests)

    response = http.post(
        "/v1/chat/completions",
        content=padded_body(setup.chat, LIMIT + 1),
        headers={
            "authorization": f"Bearer {setup.key}",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_too_large"
    assert f"limit is {LIMIT} bytes" in error["message"]
    assert len(fake_provider.requests) == before


def test_chunked_upload_over_the_limit_gets_413(http, setup, limited, fake_provider):
    body = padded_body(setup.chat, LIMIT * 2)
    before = len(fake_provider.requests)

    def chunks():
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = http.post(
        "/v1/chat/completions",
        content=chunks(),
        headers={
            "authorization": f"Bearer {setup.key}",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 413
    assert len(fake_provider.requests) == before


def test_anthropic_callers_get_request_too_large(http, setup, limited):
    text = "x" * LIMIT

    response = http.post(
        "/v1/messages",
        json={
            "model": setup.claude,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": text}],
        },
        headers={"x-api-key": setup.key, "anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 413
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "request_too_large"
