"""Circuit breaker, exact stores and response assembly."""

import os

import pytest

from nexus.engine.cache.breaker import CircuitBreaker
from nexus.engine.cache.entries import CachedResponse, assemble, rejection_reason
from nexus.engine.cache.store import MemoryExactStore, RedisExactStore
from nexus.engine.canonical import ChatResult, Usage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_then_allows_one_trial():
    clock = Clock()
    breaker = CircuitBreaker("t", threshold=2, cool_down=10, clock=clock)

    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow()

    clock.now += 10
    assert breaker.allow()
    assert not breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.allow()


def test_failed_trial_opens_the_breaker_again():
    clock = Clock()
    breaker = CircuitBreaker("t", threshold=1, cool_down=5, clock=clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow()

    breaker.failure()

    assert breaker.state == "open"
    assert not breaker.allow()


async def test_memory_store_expires_entries():
    clock = Clock()
    store = MemoryExactStore(clock=clock)
    await store.set("k", b"v", 5)

    assert await store.get("k") == b"v"
    clock.now += 5
    assert await store.get("k") is None


async def test_memory_store_evicts_least_recently_used():
    store = MemoryExactStore(max_entries=2)
    await store.set("a", b"1", 60)
    await store.set("b", b"2", 60)
    await store.get("a")

    await store.set("c", b"3", 60)

    assert await store.get("a") == b"1"
    assert await store.get("b") is None
    assert await store.get("c") == b"3"


async def test_memory_store_is_bounded_in_bytes():
    store = MemoryExactStore(max_bytes=10)
    await store.set("a", b"x" * 6, 60)

    await store.set("b", b"y" * 6, 60)

    assert await store.get("a") is None
    assert store.size == 6


@pytest.mark.shared_servers
async def test_redis_store_round_trip_and_ttl():
    store = RedisExactStore(os.environ["REDIS_URL"])
    key = "test-" + os.urandom(8).hex()
    try:
        await store.set(key, b"value", 0.2)
        assert await store.get(key) == b"value"
        ttl = await store.client.pttl("nexus:cache:exact:" + key)
        assert 0 < ttl <= 200
        await store.delete(key)
        assert await store.get(key) is None
    finally:
        await store.close()


def test_cached_response_round_trip_copies_body():
    answer = CachedResponse(
        "e" * 64, {"choices": []}, Usage(input_tokens=3, reported=True)
    )

    restored = CachedResponse.from_bytes(answer.to_bytes())
    first, second = restored.result(), restored.result()
    first.body["model"] = "changed"

    assert restored.entry_id == "e" * 64
    assert restored.usage == Usage(input_tokens=3, reported=True)
    assert "model" not in second.body


def test_unreadable_entry_is_ignored():
    assert CachedResponse.from_bytes(b"not json") is None
    assert CachedResponse.from_bytes(b'{"v": 99}') is None


def chunk(delta, finish=None, **extra):
    return {
        "id": "c1",
        "created": 5,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}],
    }


def test_assemble_merges_text_tool_calls_and_extras():
    chunks = [
        chunk({"role": "assistant", "content": "Hel"}),
        chunk({"content": "lo", "reasoning_content": "think"}),
        chunk({"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
        chunk({}, "tool_calls", stop_reason="END"),
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3}},
    ]

    result = assemble(chunks, Usage(input_tokens=3, output_tokens=4))

    choice = result.body["choices"][0]
    assert result.body["id"] == "c1"
    assert choice["message"]["content"] == "Hello"
    assert choice["message"]["reasoning_content"] == "think"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "t1",
            "type": "function",
            "function": {"name": "f", "arguments": '{"a": 1}'},
        }
    ]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["stop_reason"] == "END"
    assert result.body["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("choice", "reason"),
    [
        ({"finish_reason": "stop", "message": {"content": "ok"}}, None),
        (
            {"finish_reason": "length", "message": {"content": "o"}},
            "finish_reason_length",
        ),
        ({"finish_reason": None, "message": {"content": "o"}}, "finish_reason_missing"),
        (
            {"finish_reason": "content_filter", "message": {"content": ""}},
            "finish_reason_content_filter",
        ),
        ({"finish_reason": "stop", "message": {"refusal": "no"}}, "refusal"),
        ({"finish_reason": "stop", "message": {"content": ""}}, "empty"),
    ],
)
def test_rejection_reasons(choice, reason):
    assert rejection_reason(ChatResult({"choices": [choice]}, Usage())) == reason
