"""Coalescing across gateway processes through Redis."""

import asyncio
import json
import os

import orjson
import pytest

from nexus.engine.cache.flight import FlightTable, Outcome, RedisFlightRelay
from tests.cache.conftest import chat_body, post_many
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.shared_servers


def relay() -> RedisFlightRelay:
    return RedisFlightRelay(os.environ["REDIS_URL"], heartbeat=0.2)


def unique_key(name: str) -> str:
    return f"{name}-{os.urandom(6).hex()}"


async def test_second_process_relays_the_leaders_chunks():
    leader_table, follower_table = FlightTable(relay()), FlightTable(relay())
    key = unique_key("relay")
    try:
        leading = leader_table.lead(key, "req-leader")
        assert await leader_table.claim(leading)
        leading.publish(orjson.dumps({"n": 1}))

        following = follower_table.lead(key, "req-follower")
        leads = await follower_table.claim(following)
        leading.publish(orjson.dumps({"n": 2}))
        leader_table.end(leading, Outcome("complete", b'{"answer": 1}'))
        while not following.done:
            await following.changed(len(following.chunks), 2)

        assert leads is False
        assert following.relayed
        assert following.leader_request_id == "req-leader"
        assert [orjson.loads(c) for c in following.chunks] == [{"n": 1}, {"n": 2}]
        assert following.outcome == Outcome("complete", b'{"answer": 1}')
    finally:
        await leader_table.close()
        await follower_table.close()


async def test_silent_leader_process_is_abandoned():
    leader_relay = relay()
    leader_table, follower_table = FlightTable(leader_relay), FlightTable(relay())
    key = unique_key("silent")
    try:
        leading = leader_table.lead(key, "req-leader")
        assert await leader_table.claim(leading)
        # The leader's process stops publishing without an end entry, as if it died.
        for task in list(leader_relay.tasks):
            task.cancel()

        following = follower_table.lead(key, "req-follower")
        await follower_table.claim(following)
        await asyncio.wait_for(following.changed(0, 5), 5)

        assert following.outcome == Outcome("abandoned")
        assert key not in follower_table.flights
    finally:
        await leader_table.close()
        await follower_table.close()


async def test_lock_is_released_after_the_end():
    first, second = FlightTable(relay()), FlightTable(relay())
    key = unique_key("release")
    try:
        flight = first.lead(key, "req-1")
        assert await first.claim(flight)
        first.end(flight, Outcome("complete", b"{}"))
        await asyncio.gather(*first.relay.tasks)

        later = second.lead(key, "req-2")

        assert await second.claim(later) is True
    finally:
        await first.close()
        await second.close()


def test_two_gateway_processes_make_one_upstream_call(cache):
    cache.policy(enabled=False)
    process = GatewayProcess()
    try:
        cache.fake.enqueue("/chat/completions", {"reply": {}, "delay": 2.0})
        body = chat_body("two processes, one upstream call", cache.chat, temperature=0)

        async def both():
            return await asyncio.gather(
                post_many(cache.gateway.url, cache.key_a.key, [body] * 10),
                post_many(process.url, cache.key_a.key, [body] * 10),
            )

        here, there = asyncio.run(both())
    finally:
        process.stop()

    assert cache.upstream_calls() == 1
    for status, text, _ in here + there:
        assert status == 200
        assert json.loads(text)["choices"][0]["message"]["content"] == (
            "Echo: two processes, one upstream call"
        )
