import anthropic
import openai
import pytest

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {
    "model": "m",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi"}],
}


def test_openai_missing_key_is_401(http):
    response = http.post("/v1/chat/completions", json=CHAT)

    error = response.json()["error"]
    assert response.status_code == 401
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_openai_non_bearer_scheme_is_401(http):
    response = http.post(
        "/v1/chat/completions", headers={"Authorization": "Basic abc"}, json=CHAT
    )

    assert response.status_code == 401


def test_openai_any_key_accepted_without_expected_key(openai_client):
    completion = openai_client.chat.completions.create(**CHAT)

    assert completion.choices[0].message.content == "Echo: hi"


def test_openai_wrong_key_raises_authentication_error(fake_provider):
    fake_provider.set_key("openai", "sk-right")
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="sk-wrong")

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(**CHAT)

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong" not in caught.value.message


def test_openai_expected_key_is_accepted(fake_provider):
    fake_provider.set_key("openai", "sk-right")
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="sk-right")

    assert (
        client.chat.completions.create(**CHAT).choices[0].message.content == "Echo: hi"
    )


def test_rejected_request_keeps_script_queued(http, fake_provider):
    fake_provider.enqueue(None, {"json": {"scripted": True}})

    rejected = http.post("/v1/chat/completions", json=CHAT)

    assert rejected.status_code == 401
    assert fake_provider.pending == 1
    assert fake_provider.requests[-1].path == "/v1/chat/completions"


def test_anthropic_missing_key_is_401(http):
    response = http.post(
        "/v1/messages", headers={"anthropic-version": "2023-06-01"}, json=MESSAGE
    )

    assert response.status_code == 401
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "Missing x-api-key header.",
        },
    }


def test_anthropic_missing_version_is_400(http):
    response = http.post("/v1/messages", headers={"x-api-key": "k"}, json=MESSAGE)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in response.json()["error"]["message"]


def test_anthropic_x_api_key_header_is_accepted(http, fake_provider):
    fake_provider.set_key("anthropic", "sk-ant-right")
    headers = {"x-api-key": "sk-ant-right", "anthropic-version": "2023-06-01"}

    response = http.post("/v1/messages", headers=headers, json=MESSAGE)

    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == "Echo: hi"


def test_anthropic_wrong_key_raises_authentication_error(fake_provider):
    fake_provider.set_key("anthropic", "sk-ant-right")
    client = anthropic.Anthropic(
        base_url=fake_provider.anthropic_base, api_key="sk-ant-wrong", max_retries=0
    )

    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(**MESSAGE)

    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_reset_restores_startup_keys(fake_provider, anthropic_client):
    fake_provider.set_key("anthropic", "sk-ant-other")

    fake_provider.reset()

    assert anthropic_client.messages.create(**MESSAGE).content[0].text == "Echo: hi"


def test_unknown_vendor_key_is_rejected(fake_provider):
    with pytest.raises(ValueError, match="Unknown vendor 'acme'"):
        fake_provider.set_key("acme", "k")
