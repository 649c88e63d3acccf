"""Every answer-changing parameter separates exact-cache entries, end to end.

A replayed answer must have been produced for the same request: a 16-token answer
is never served for a 4000-token request, tool_choice none never reuses an auto
answer, an omitted temperature (1 on OpenAI) is not temperature 0, and another
team's key does not see the entry.
"""

import httpx
import orjson
import pytest

from apps.audit.models import AuditEvent
from tests.support.factories import make_model, make_project, make_tenant

QUESTION = [{"role": "user", "content": "Capital of France? One word."}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


def upstream_answer(number: int) -> dict:
    return {
        "json": {
            "id": f"chatcmpl-fake27-{number}",
            "object": "chat.completion",
            "created": 1767225600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Paris",
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 14, "completion_tokens": 1, "total_tokens": 15},
            "system_fingerprint": "fp_fake01",
        }
    }


class Scenario:
    def __init__(self, cache, db_rows) -> None:
        self.cache = cache
        self.small = cache.chat
        self.big = make_model(
            cache.connection, "gpt-4.1", input_price="2", output_price="8"
        ).name
        team_1 = make_project(cache.org)
        team_2 = make_project(cache.org)
        allowed = (self.small, self.big)
        self.key_a = make_tenant(allowed, project=team_1, org=cache.org).key
        self.key_c = make_tenant((self.small,), project=team_2, org=cache.org).key
        cache.policy(ttl_seconds=3600)
        self.misses = 0

    def send(self, body, *, key=None, expect: str, raw: bytes | None = None):
        if expect == "miss":
            self.misses += 1
            self.cache.fake.enqueue("/chat/completions", upstream_answer(self.misses))
        response = httpx.post(
            f"{self.cache.gateway.url}/v1/chat/completions",
            content=raw if raw is not None else orjson.dumps(body),
            headers={
                "authorization": f"Bearer {key or self.key_a}",
                "content-type": "application/json",
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-nexus-cache"] == expect
        if expect == "miss":
            assert response.json()["id"] == f"chatcmpl-fake27-{self.misses}"
        return response


@pytest.fixture
def scenario(cache, db_rows):
    return Scenario(cache, db_rows)


def body(model, **fields):
    return {
        "model": model,
        "temperature": 0,
        "max_tokens": 16,
        "messages": QUESTION,
        **fields,
    }


def test_only_identical_requests_share_an_entry(scenario):
    r0 = scenario.send(body(scenario.small), expect="miss")
    again = scenario.send(body(scenario.small), expect="hit")
    reordered = (
        b'{ "messages" : [ {"content": "Capital of France? One word.", '
        b'"role": "user"} ],\n  "max_tokens": 16, "temperature": 0.0, '
        b'"model": "' + scenario.small.encode() + b'" }'
    )
    scenario.send(None, raw=reordered, expect="hit")
    scenario.send(body(scenario.small, max_tokens=4000), expect="miss")
    scenario.send(body(scenario.small, stop=["\n"]), expect="miss")
    scenario.send(body(scenario.small, top_p=0.5), expect="miss")
    scenario.send(body(scenario.small, tools=TOOLS, tool_choice="auto"), expect="miss")
    scenario.send(body(scenario.small, tools=TOOLS, tool_choice="none"), expect="miss")
    scenario.send(body(scenario.big), expect="miss")
    scenario.send(body(scenario.small), key=scenario.key_c, expect="miss")
    omitted = body(scenario.small)
    del omitted["temperature"]
    scenario.send(omitted, expect="miss")
    # Answers to an omitted temperature are cached like any other (documented).
    scenario.send(omitted, expect="hit")

    assert again.json()["id"] == r0.json()["id"] == "chatcmpl-fake27-1"
    assert scenario.cache.upstream_calls() == scenario.misses == 9
    assert scenario.cache.fake.pending == 0


def test_hit_is_marked_in_audit_and_not_charged(scenario):
    miss = scenario.send(body(scenario.small), expect="miss")
    hit = scenario.send(body(scenario.small), expect="hit")
    scenario.cache.gateway.flush_audit()

    miss_event = AuditEvent.objects.get(request_id=miss.headers["x-request-id"])
    hit_event = AuditEvent.objects.get(request_id=hit.headers["x-request-id"])

    assert miss_event.cost_nano_usd > 0
    assert hit_event.details["cache"]["outcome"] == "hit"
    assert hit_event.cost_nano_usd == 0
    assert (
        hit_event.details["cache"]["saved"]["cost_nano_usd"] == miss_event.cost_nano_usd
    )


def test_responses_api_instructions_separate_entries(scenario):
    cache = scenario.cache

    def respond(instructions):
        return httpx.post(
            f"{cache.gateway.url}/v1/responses",
            json={
                "model": scenario.small,
                "input": "Capital of France? One word.",
                "instructions": instructions,
                "temperature": 0,
                "max_output_tokens": 16,
            },
            headers={"authorization": f"Bearer {scenario.key_a}"},
            timeout=30,
        )

    german = respond("Answer in German.")
    spanish = respond("Answer in Spanish.")
    german_again = respond("Answer in German.")

    assert german.status_code == 200, german.text
    assert german.headers["x-nexus-cache"] == "miss"
    assert spanish.headers["x-nexus-cache"] == "miss"
    assert german_again.headers["x-nexus-cache"] == "hit"
    assert (
        cache.upstream_calls("/chat/completions") + cache.upstream_calls("/responses")
        == 2
    )
