"""Malformed request bodies get a 400 in the caller's format and never reach upstream."""

import httpx
import pytest

from apps.audit.models import AuditEvent

BODIES = {
    "truncated": b'{"model": "M", "messages": [',
    "unquoted_keys": b'{model: "M"}',
    "trailing_comma": b'{"model": "M", "messages": [{"role": "user", "content": "hi"},]}',
    "top_level_array": b"[]",
    "top_level_string": b'"hello"',
    "empty": b"",
    "whitespace": b"  \n ",
    "invalid_utf8": bytes.fromhex("7b226d6f64656c223a22ff227d"),
    "wrong_types": b'{"model": 123, "messages": "hi"}',
    "stream_not_bool": b'{"model": "M", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}',
    "message_not_object": b'{"model": "M", "messages": ["hi"]}',
    "bad_role": b'{"model": "M", "messages": [{"role": "robot", "content": "hi"}]}',
    "max_tokens_string": b'{"model": "M", "max_tokens": "10", "messages": [{"role": "user", "content": "hi"}]}',
    "nested_too_deep": b'{"model": "M", "messages": '
    + b"[" * 2000
    + b"]" * 2000
    + b"}",
}
PATHS = ["/v1/chat/completions", "/v1/embeddings", "/v1/messages"]


@pytest.fixture
def http(setup):
    with httpx.Client(base_url=setup.gateway.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(BODIES))
def test_malformed_body_gets_400(http, setup, fake_provider, path, name):
    body = BODIES[name].replace(b'"M"', f'"{setup.chat}"'.encode())

    response = http.post(
        path,
        content=body,
        headers={
            "authorization": f"Bearer {setup.key}",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 400
    payload = response.json()
    if path == "/v1/messages":
        assert payload["type"] == "error"
        assert payload["error"]["type"] == "invalid_request_error"
        assert payload["error"]["message"]
    else:
        assert payload["error"]["type"] == "invalid_request_error"
        assert payload["error"]["message"]
        assert "param" in payload["error"]
        assert "code" in payload["error"]
    assert fake_provider.requests == []


def test_connection_survives_bad_bodies(http, setup):
    headers = {"authorization": f"Bearer {setup.key}"}

    for body in BODIES.values():
        assert (
            http.post("/v1/chat/completions", content=body, headers=headers).status_code
            == 400
        )
    good = http.post(
        "/v1/chat/completions",
        json={"model": setup.chat, "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )

    assert good.status_code == 200
    assert good.json()["choices"][0]["message"]["content"] == "Echo: hi"


def test_bad_body_is_audited_as_client_error(http, setup):
    response = http.post(
        "/v1/chat/completions",
        content=b"{",
        headers={"authorization": f"Bearer {setup.key}"},
    )
    setup.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert event.status_code == 400
    assert event.error_code == "invalid_request"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/json; charset=utf-8"]
)
def test_json_body_accepted_whatever_content_type(http, setup, content_type):
    headers = {"authorization": f"Bearer {setup.key}"}
    if content_type:
        headers["content-type"] = content_type

    response = http.post(
        "/v1/chat/completions",
        content=f'{{"model": "{setup.chat}", "messages": [{{"role": "user", "content": "hi"}}]}}',
        headers=headers,
    )

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize(
    "body",
    [
        BODIES["invalid_utf8"],
        b'{"model": "M", "messages": [{"role": "user", "content": "caf\xe9"}]}',
    ],
    ids=["byte_ff", "latin1_text"],
)
def test_invalid_utf8_body_message(http, setup, fake_provider, path, body):
    response = http.post(
        path,
        content=body.replace(b'"M"', f'"{setup.chat}"'.encode()),
        headers={
            "authorization": f"Bearer {setup.key}",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "The request body is not valid UTF-8 JSON."
    assert fake_provider.requests == []
