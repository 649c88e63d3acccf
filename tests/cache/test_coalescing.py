"""Identical concurrent requests share one upstream call, streamed or not."""

import asyncio
import json

import pytest

from apps.audit.models import AuditEvent
from tests.cache.conftest import chat_body, post_many, until_upstream_called

COUNT = 50


def sse_text(raw: str) -> tuple[str, bool]:
    """Return the concatenated content of an OpenAI SSE body and whether it ended."""
    text = []
    done = False
    for line in raw.splitlines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        for choice in event.get("choices") or []:
            text.append(choice["delta"].get("content") or "")
    return "".join(text), done


@pytest.mark.parametrize("exact", [True, False], ids=["cache-on", "cache-off"])
def test_fifty_identical_requests_make_one_upstream_call(cache, exact):
    cache.policy(enabled=exact)
    cache.fake.enqueue("/chat/completions", {"reply": {}, "delay": 1.0})
    body = chat_body("fifty callers ask the same", cache.chat, temperature=0)

    answers = asyncio.run(post_many(cache.gateway.url, cache.key_a.key, [body] * COUNT))

    assert cache.upstream_calls() == 1
    assert [status for status, _, _ in answers] == [200] * COUNT
    ids = {json.loads(text)["id"] for _, text, _ in answers}
    contents = {
        json.loads(text)["choices"][0]["message"]["content"] for _, text, _ in answers
    }
    assert len(ids) == 1
    assert contents == {"Echo: fifty callers ask the same"}
    outcomes = sorted(headers["x-nexus-cache"] for _, _, headers in answers)
    assert outcomes.count("miss") == 1
    assert outcomes.count("coalesced") == COUNT - 1


def test_fifty_streaming_requests_share_one_stream(cache):
    cache.policy(enabled=False)
    cache.fake.enqueue(
        "/chat/completions", {"reply": {}, "delay": 0.5, "chunk_delay": 0.05}
    )
    text = "every follower gets every chunk from the first one"
    body = chat_body(text, cache.chat, temperature=0, stream=True)

    answers = asyncio.run(post_many(cache.gateway.url, cache.key_a.key, [body] * COUNT))

    assert cache.upstream_calls() == 1
    for status, raw, _ in answers:
        assert status == 200
        content, done = sse_text(raw)
        assert content == "Echo: " + text
        assert done


def test_follower_joining_mid_stream_gets_the_whole_stream(cache):
    cache.policy(enabled=False)
    cache.fake.enqueue("/chat/completions", {"reply": {}, "chunk_delay": 0.15})
    text = "late joiners still see the first words of this answer"
    body = chat_body(text, cache.chat, temperature=0, stream=True)

    async def leader_then_followers():
        leader = asyncio.ensure_future(
            post_many(cache.gateway.url, cache.key_a.key, [body])
        )
        # The leader owns the flight once its upstream call has started.
        await until_upstream_called(cache.fake)
        await asyncio.sleep(0.3)
        followers = await post_many(cache.gateway.url, cache.key_a.key, [body] * 5)
        return (await leader) + followers

    answers = asyncio.run(leader_then_followers())

    assert cache.upstream_calls() == 1
    assert [headers["x-nexus-cache"] for _, _, headers in answers] == ["miss"] + [
        "coalesced"
    ] * 5
    for _, raw, _ in answers:
        assert sse_text(raw) == ("Echo: " + text, True)


def test_streaming_leader_serves_non_streaming_followers(cache):
    cache.policy(enabled=False)
    cache.fake.enqueue("/chat/completions", {"reply": {}, "chunk_delay": 0.05})
    text = "mixed stream and json callers"
    streamed = chat_body(text, cache.chat, temperature=0, stream=True)
    plain = chat_body(text, cache.chat, temperature=0)

    async def mixed():
        leader = asyncio.ensure_future(
            post_many(cache.gateway.url, cache.key_a.key, [streamed])
        )
        await until_upstream_called(cache.fake)
        followers = await post_many(cache.gateway.url, cache.key_a.key, [plain] * 3)
        return (await leader), followers

    (leader,), followers = asyncio.run(mixed())

    assert cache.upstream_calls() == 1
    assert sse_text(leader[1]) == ("Echo: " + text, True)
    for status, raw, headers in followers:
        assert status == 200
        assert headers["x-nexus-cache"] == "coalesced"
        assert json.loads(raw)["choices"][0]["message"]["content"] == "Echo: " + text


def test_followers_are_audited_as_coalesced_without_cost(cache):
    cache.policy(enabled=False)
    cache.fake.enqueue("/chat/completions", {"reply": {}, "delay": 0.5})
    body = chat_body("who pays for the followers", cache.chat, temperature=0)

    answers = asyncio.run(post_many(cache.gateway.url, cache.key_a.key, [body] * 5))
    cache.gateway.flush_audit()

    ids = [headers["x-request-id"] for _, _, headers in answers]
    events = {e.request_id: e for e in AuditEvent.objects.filter(request_id__in=ids)}
    leader = next(e for e in events.values() if e.details["cache"]["outcome"] == "miss")
    followers = [e for e in events.values() if e is not leader]
    assert leader.cost_nano_usd > 0
    assert leader.details["cache"]["followers"] == 4
    assert len(followers) == 4
    for follower in followers:
        cache_details = follower.details["cache"]
        assert cache_details["outcome"] == "coalesced"
        assert cache_details["leader"] == leader.request_id
        assert cache_details["saved"]["cost_nano_usd"] == leader.cost_nano_usd
        assert follower.cost_nano_usd == 0
        assert follower.input_tokens == 0
        assert follower.status_code == 200


def test_leader_error_reaches_every_follower(cache):
    cache.policy(enabled=False)
    cache.fake.enqueue(
        "/chat/completions",
        {"error": "rate_limit_exceeded", "status": 429, "delay": 0.5},
    )
    body = chat_body("the provider is busy", cache.chat, temperature=0)

    answers = asyncio.run(post_many(cache.gateway.url, cache.key_a.key, [body] * 10))

    assert cache.upstream_calls() == 1
    assert [status for status, _, _ in answers] == [429] * 10


def test_followers_take_over_when_the_leader_hangs_up(cache):
    cache.policy(enabled=False)
    cache.fake.enqueue("/chat/completions", {"reply": {}, "delay": 5.0})
    body = chat_body("the first caller hangs up", cache.chat, temperature=0)
    flights = cache.layer.flights.flights

    async def until_followed(count: int) -> None:
        while not any(flight.followers >= count for flight in list(flights.values())):
            await asyncio.sleep(0.01)

    async def scenario():
        leader = asyncio.ensure_future(
            post_many(cache.gateway.url, cache.key_a.key, [body])
        )
        await until_upstream_called(cache.fake)
        followers = asyncio.ensure_future(
            post_many(cache.gateway.url, cache.key_a.key, [body] * 4)
        )
        await asyncio.wait_for(until_followed(4), 30)
        # The leader's caller hangs up while its upstream call is still waiting.
        leader.cancel()
        await asyncio.gather(leader, return_exceptions=True)
        return await followers

    followers = asyncio.run(scenario())

    assert [status for status, _, _ in followers] == [200] * 4
    assert cache.upstream_calls() == 2


def test_different_requests_are_not_coalesced(cache):
    cache.policy(enabled=False)
    bodies = [chat_body(f"question number {i}", cache.chat) for i in range(5)]

    answers = asyncio.run(post_many(cache.gateway.url, cache.key_a.key, bodies))

    assert cache.upstream_calls() == 5
    assert {headers["x-nexus-cache"] for _, _, headers in answers} == {"miss"}
