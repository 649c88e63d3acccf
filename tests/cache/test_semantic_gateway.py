"""Semantic cache through the gateway, embedding with a gateway embeddings model.

The fake provider's embeddings sum one pseudo-random vector per lowercased word, so
prompts that differ only in case and spacing embed identically, while their exact
keys differ.
"""

import time

import pytest

from apps.audit.models import AuditEvent
from apps.cache.services import drop_semantic_index, purge_cache, quarantine_entry
from tests.cache.conftest import chat_body, make_index
from tests.support.factories import make_tenant

PROMPT = "Tell me about the moons of Jupiter"
VARIANT = "tell me  about the MOONS of jupiter"


@pytest.fixture
def semantic(cache):
    index = make_index(embedding_model=cache.embed, dimensions=64, threshold=0.95)
    cache.policy(semantic_index=index)
    cache.index = index
    return cache


def ask(cache, text, key=None, **fields):
    return cache.post(chat_body(text, cache.chat, temperature=0, **fields), key=key)


def test_variant_prompt_is_a_semantic_hit(semantic):
    first = ask(semantic, PROMPT)
    semantic.drain()

    hit = ask(semantic, VARIANT)
    semantic.gateway.flush_audit()

    assert first.headers["x-nexus-cache"] == "miss"
    assert hit.headers["x-nexus-cache"] == "semantic-hit"
    assert float(hit.headers["x-nexus-cache-similarity"]) > 0.99
    assert hit.json()["choices"] == first.json()["choices"]
    assert semantic.upstream_calls() == 1
    event = AuditEvent.objects.get(request_id=hit.headers["x-request-id"])
    assert event.details["cache"]["outcome"] == "semantic_hit"
    assert event.details["cache"]["similarity"] > 0.99
    assert event.details["cache"]["entry"] == first.headers["x-nexus-cache-entry"]
    assert event.cost_nano_usd == 0


def test_unrelated_prompt_misses(semantic):
    ask(semantic, PROMPT)
    semantic.drain()

    other = ask(semantic, "How do volcanoes form on Earth")

    assert other.headers["x-nexus-cache"] == "miss"
    assert semantic.upstream_calls() == 2


def test_other_project_and_other_org_never_get_the_answer(semantic, db_rows):
    ask(semantic, PROMPT)
    semantic.drain()
    outsider = make_tenant()
    semantic.policy(organization=outsider.org, semantic_index=semantic.index)

    other_project = ask(semantic, VARIANT, key=semantic.key_c.key)
    other_org = ask(semantic, VARIANT, key=outsider.key)

    assert other_project.headers["x-nexus-cache"] == "miss"
    assert other_org.headers["x-nexus-cache"] == "miss"
    assert semantic.upstream_calls() == 3


def test_org_wide_sharing_reaches_other_projects(cache):
    index = make_index(embedding_model=cache.embed, dimensions=64)
    cache.policy(semantic_index=index, share="org")
    ask(cache, PROMPT)
    cache.drain()

    response = ask(cache, VARIANT, key=cache.key_c.key)

    assert response.headers["x-nexus-cache"] == "semantic-hit"


def test_requests_with_tools_skip_the_semantic_cache(semantic):
    tools = [{"type": "function", "function": {"name": "moons", "parameters": {}}}]
    ask(semantic, PROMPT, tools=tools)
    semantic.drain()

    response = ask(semantic, VARIANT, tools=tools)
    semantic.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert response.headers["x-nexus-cache"] == "miss"
    assert event.details["cache"]["semantic"] == {
        "outcome": "skipped",
        "reason": "tools",
    }


def test_other_system_prompt_misses(semantic):
    system = {"role": "system", "content": "Answer as a pirate."}
    semantic.post(
        {
            "model": semantic.chat,
            "temperature": 0,
            "messages": [system, {"role": "user", "content": PROMPT}],
        }
    )
    semantic.drain()

    response = ask(semantic, VARIANT)

    assert response.headers["x-nexus-cache"] == "miss"


def test_entries_expire(cache):
    index = make_index(embedding_model=cache.embed, dimensions=64, ttl_seconds=1)
    cache.policy(semantic_index=index, enabled=False)
    ask(cache, PROMPT)
    cache.drain()
    assert ask(cache, VARIANT).headers["x-nexus-cache"] == "semantic-hit"

    time.sleep(1.3)

    assert ask(cache, VARIANT).headers["x-nexus-cache"] == "miss"


def test_breaker_skips_a_failing_embedder(cache):
    index = make_index(embedding_model=cache.embed, dimensions=64, breaker_failures=2)
    cache.policy(semantic_index=index)
    for _ in range(2):
        cache.fake.enqueue("/embeddings", {"error": "server_error", "status": 500})

    answers = [ask(cache, f"question {i} while embeddings fail") for i in range(4)]
    cache.gateway.flush_audit()

    events = [
        AuditEvent.objects.get(request_id=a.headers["x-request-id"]) for a in answers
    ]
    reasons = [e.details["cache"]["semantic"]["reason"] for e in events]
    assert [a.status_code for a in answers] == [200] * 4
    assert reasons == ["error", "error", "circuit_open", "circuit_open"]
    assert cache.upstream_calls("/embeddings") == 2


def test_changed_dimension_rebuilds_the_index(semantic):
    ask(semantic, PROMPT)
    semantic.drain()
    semantic.index.dimensions = 32
    semantic.index.save()
    semantic.gateway.refresh()

    after = ask(semantic, VARIANT)

    assert after.headers["x-nexus-cache"] == "miss"
    embeddings = [r for r in semantic.fake.requests if r.path.endswith("/embeddings")]
    assert embeddings[-1].json["dimensions"] == 32


def test_dropped_index_loses_its_entries(cache):
    index = make_index(embedding_model=cache.embed, dimensions=64)
    cache.policy(semantic_index=index, enabled=False)
    ask(cache, PROMPT)
    cache.drain()

    drop_semantic_index(index)
    cache.gateway.refresh()
    after = ask(cache, VARIANT)

    assert after.headers["x-nexus-cache"] == "miss"
    assert cache.upstream_calls() == 2


def test_purge_empties_exact_and_semantic_entries(semantic):
    ask(semantic, PROMPT)
    semantic.drain()

    purge_cache(semantic.org, reason="test")
    semantic.gateway.refresh()
    exact = ask(semantic, PROMPT)
    semantic.drain()

    assert exact.headers["x-nexus-cache"] == "miss"
    assert semantic.upstream_calls() == 2


def test_purge_of_one_org_keeps_another(semantic, db_rows):
    outsider = make_tenant()
    semantic.policy(organization=outsider.org)
    ask(semantic, PROMPT, key=outsider.key)

    purge_cache(semantic.org)
    semantic.gateway.refresh()

    assert ask(semantic, PROMPT, key=outsider.key).headers["x-nexus-cache"] == "hit"


def test_quarantined_entry_is_never_served_or_stored(semantic):
    first = ask(semantic, PROMPT)
    semantic.drain()

    quarantine_entry(first.headers["x-nexus-cache-entry"], reason="wrong answer")
    semantic.gateway.refresh()
    exact = ask(semantic, PROMPT)
    semantic.drain()
    again = ask(semantic, PROMPT)
    variant = ask(semantic, VARIANT)

    assert exact.headers["x-nexus-cache"] == "miss"
    assert again.headers["x-nexus-cache"] == "miss"
    assert variant.headers["x-nexus-cache"] == "miss"
    assert semantic.upstream_calls() == 4
