"""Request bodies up to the limit pass whole; larger ones get 413 without reaching upstream."""

import base64
import hashlib

import httpx
import pytest
from django.test import override_settings


@pytest.fixture
def http(setup):
    with httpx.Client(base_url=setup.gateway.url, timeout=60) as client:
        yield client


def chat_body(model: str, text: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize("size", [32_768, 32_769, 1024 * 1024])
def test_large_prompt_reaches_upstream_whole(http, setup, fake_provider, size):
    text = "x" * size

    response = http.post(
        "/v1/chat/completions",
        json=chat_body(setup.chat, text),
        headers={"authorization": f"Bearer {setup.key}"},
    )

    assert response.status_code == 200
    sent = fake_provider.requests[-1].json["messages"][0]["content"]
    assert (
        hashlib.sha256(sent.encode()).hexdigest()
        == hashlib.sha256(text.encode()).hexdigest()
    )


def test_eight_mib_image_reaches_upstream(http, setup, fake_provider):
    image = base64.b64encode(b"\x89PNG" + b"\x00" * (6 * 1024 * 1024)).decode()
    url = f"data:image/png;base64,{image}"
    body = {
        "model": setup.chat,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is it"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    }

    response = http.post(
        "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {setup.key}"},
    )

    assert response.status_code == 200
    assert (
        fake_provider.requests[-1].json["messages"][0]["content"][1]["image_url"]["url"]
        == url
    )


def test_streamed_upload_is_accepted(http, setup):
    payload = httpx.Request(
        "POST", "/", json=chat_body(setup.chat, "y" * 100_000)
    ).content

    def chunks():
        for start in range(0, len(payload), 7000):
            yield payload[start : start + 7000]

    response = http.post(
        "/v1/chat/completions",
        content=chunks(),
        headers={"authorization": f"Bearer {setup.key}"},
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path,anthropic",
    [
        ("/v1/chat/completions", False),
        ("/v1/embeddings", False),
        ("/v1/messages", True),
    ],
)
def test_over_limit_gets_413_in_caller_format(
    http, setup, fake_provider, path, anthropic
):
    with override_settings(NEXUS_MAX_REQUEST_BYTES=50_000):
        response = http.post(
            path,
            json=chat_body(setup.chat, "z" * 60_000),
            headers={"authorization": f"Bearer {setup.key}"},
        )

    assert response.status_code == 413
    if anthropic:
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "request_too_large"
    else:
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert "50000" in response.json()["error"]["message"]
    assert fake_provider.requests == []


def test_chunked_upload_over_limit_gets_413(http, setup, fake_provider):
    def chunks():
        for _ in range(20):
            yield b"a" * 10_000

    with override_settings(NEXUS_MAX_REQUEST_BYTES=50_000):
        response = http.post(
            "/v1/chat/completions",
            content=chunks(),
            headers={"authorization": f"Bearer {setup.key}"},
        )

    assert response.status_code == 413
    assert fake_provider.requests == []


def test_huge_header_gets_431(http, setup):
    response = http.post(
        "/v1/chat/completions",
        json=chat_body(setup.chat, "hi"),
        headers={"authorization": f"Bearer {setup.key}", "x-padding": "p" * 40_000},
    )

    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_headers_too_large"
