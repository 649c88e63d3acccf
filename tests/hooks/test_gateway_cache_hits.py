"""Response hooks apply to responses served from the cache as to fresh ones."""

import anthropic
import openai
import pytest

from apps.cache.models import CachePolicy

EMAIL = "jane.placeholder@example.test"
TEXT = f"Write to {EMAIL} about the rollout."


@pytest.fixture
def cached(setup):
    row = CachePolicy.objects.create(organization=setup.org)
    setup.gateway.refresh()
    yield
    row.delete()
    setup.gateway.refresh()


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


def ask(oai, setup, stream: bool) -> tuple[str, str]:
    """Send TEXT; return the answer's text and its x-nexus-cache header."""
    raw = oai.chat.completions.with_raw_response.create(
        model=setup.chat,
        messages=[{"role": "user", "content": TEXT}],
        temperature=0,
        stream=stream,
    )
    answer = raw.parse()
    if stream:
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices
        )
    else:
        text = answer.choices[0].message.content
    return text, raw.headers.get("x-nexus-cache", "")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_new_hook_redacts_cache_hit(oai, setup, policy, cached, fake_provider, stream):
    first, first_outcome = ask(oai, setup, stream)
    policy.add("pii", "response", priority=10)

    again, outcome = ask(oai, setup, stream)

    assert EMAIL in first
    assert first_outcome == "miss"
    assert outcome == "hit"
    assert EMAIL not in again
    assert "rollout" in again
    assert (
        sum(1 for r in fake_provider.requests if r.path.endswith("/completions")) == 1
    )


def test_blocking_hook_stops_cache_hit(setup, policy, cached):
    claude = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )
    body = {
        "model": setup.chat,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "news about Project Falcon"}],
    }
    claude.messages.create(**body)
    policy.add(
        "rules",
        "response",
        options={"rules": [{"id": "codes:1", "keyword": "Project Falcon"}]},
    )

    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(**body)

    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "Blocked by the" in caught.value.body["error"]["message"]
