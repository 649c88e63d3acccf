"""The Redis and in-process counter stores behave the same."""

import uuid

import pytest
from django.conf import settings

from nexus.engine.quotas.backend import MemoryBackend, ReserveCounter, SettleCounter
from nexus.engine.quotas.redis_backend import RedisBackend

NOW = 1_750_000_000.0


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.shared_servers)]
)
async def backend(request):
    if request.param == "memory":
        store = MemoryBackend()
    else:
        store = RedisBackend(settings.REDIS_URL)
    yield store
    await store.close()


@pytest.fixture
def org() -> int:
    return uuid.uuid4().int % 10**9


def key(org: int, name: str) -> str:
    return f"nq:{{o{org}}}:{uuid.uuid4().hex[:16]}:{name}"


def counter(
    name: str, amount: int, hard: int | None = None, **fields
) -> ReserveCounter:
    fields.setdefault("bucket", 100)
    fields.setdefault("oldest", 41)
    return ReserveCounter(key=name, ttl=3600, amount=amount, hard=hard, **fields)


def settle(name: str, reserved: int, actual: int, **fields) -> SettleCounter:
    fields.setdefault("reserved_bucket", 100)
    fields.setdefault("bucket", 100)
    fields.setdefault("oldest", 41)
    fields.setdefault("marker", name + ":soft")
    return SettleCounter(
        key=name, ttl=3600, reserved=reserved, actual=actual, marker_ttl=60, **fields
    )


async def test_reservation_charges_all_counters_or_none(backend, org):
    tokens, spend = key(org, "tokens"), key(org, "usd")

    admitted = await backend.reserve(
        org, "r1", [counter(tokens, 50, 100), counter(spend, 5, 10)], NOW, NOW + 60
    )
    rejected = await backend.reserve(
        org, "r2", [counter(tokens, 40, 100), counter(spend, 6, 10)], NOW, NOW + 60
    )

    assert admitted.admitted
    assert admitted.reserved == [50, 5]
    assert not rejected.admitted
    assert rejected.rejected == 1
    assert rejected.used == [50, 5]
    assert await backend.usage(tokens, 41) == 50
    assert await backend.usage(spend, 41) == 5


async def test_uncapped_estimate_shrinks_to_what_is_left(backend, org):
    tokens = key(org, "tokens")
    await backend.reserve(org, "r1", [counter(tokens, 90, 100)], NOW, NOW + 60)

    fitted = await backend.reserve(
        org, "r2", [counter(tokens, 50, 100, floor=5)], NOW, NOW + 60
    )
    full = await backend.reserve(
        org, "r3", [counter(tokens, 50, 100, floor=5)], NOW, NOW + 60
    )

    assert fitted.admitted
    assert fitted.reserved == [10]
    assert not full.admitted
    assert await backend.usage(tokens, 41) == 100


async def test_settlement_moves_reservation_to_actual(backend, org):
    tokens = key(org, "tokens")
    await backend.reserve(org, "r1", [counter(tokens, 50, 100)], NOW, NOW + 60)

    outcome = await backend.settle(org, "r1", [settle(tokens, 50, 7)], NOW)

    assert outcome.found
    assert await backend.usage(tokens, 41) == 7


async def test_settlement_of_unknown_reservation_adds_actual(backend, org):
    tokens = key(org, "tokens")

    outcome = await backend.settle(org, "never-reserved", [settle(tokens, 0, 7)], NOW)

    assert not outcome.found
    assert await backend.usage(tokens, 41) == 7


async def test_due_reservation_is_released_by_next_reservation(backend, org):
    tokens = key(org, "tokens")
    await backend.reserve(org, "stale", [counter(tokens, 50, 100)], NOW, NOW + 60)

    await backend.reserve(org, "fresh", [counter(tokens, 10, 100)], NOW + 61, NOW + 121)
    late = await backend.settle(org, "stale", [settle(tokens, 50, 20)], NOW + 62)

    assert not late.found
    assert await backend.usage(tokens, 41) == 30


async def test_seed_applies_only_to_absent_counter(backend, org):
    tokens = key(org, "tokens")
    seed = ((99, 40), (10, 1000))

    await backend.reserve(
        org, "r1", [counter(tokens, 5, 100, seed=seed)], NOW, NOW + 60
    )
    again = await backend.reserve(
        org, "r2", [counter(tokens, 5, 100, seed=seed)], NOW, NOW + 60
    )

    assert again.used == [45]
    assert await backend.usage(tokens, 41) == 50


async def test_buckets_older_than_window_stop_counting(backend, org):
    tokens = key(org, "tokens")
    await backend.reserve(
        org, "r1", [counter(tokens, 30, 100, bucket=100, oldest=41)], NOW, NOW + 60
    )

    later = await backend.reserve(
        org, "r2", [counter(tokens, 80, 100, bucket=170, oldest=111)], NOW, NOW + 60
    )

    assert later.admitted
    assert later.used == [0]


async def test_rejection_names_bucket_that_frees_room(backend, org):
    tokens = key(org, "tokens")
    await backend.reserve(
        org, "r1", [counter(tokens, 30, 100, bucket=60)], NOW, NOW + 60
    )
    await backend.reserve(
        org, "r2", [counter(tokens, 60, 100, bucket=90)], NOW, NOW + 60
    )

    outcome = await backend.reserve(
        org, "r3", [counter(tokens, 20, 100, bucket=99)], NOW, NOW + 60
    )

    assert not outcome.admitted
    assert outcome.drain_bucket == 60


async def test_soft_limit_crossing_reported_once_per_marker(backend, org):
    tokens = key(org, "tokens")
    crossings = []

    for index in range(3):
        outcome = await backend.settle(
            org, f"r{index}", [settle(tokens, 0, 6, soft=10)], NOW
        )
        crossings.append(outcome.crossed[0])
    next_window = await backend.settle(
        org, "r9", [settle(tokens, 0, 1, soft=10, marker=tokens + ":soft:2")], NOW
    )

    assert crossings == [None, 12, None]
    assert next_window.crossed == [19]


async def test_existing_lists_counters_in_store(backend, org):
    present, absent = key(org, "a"), key(org, "b")
    await backend.reserve(org, "r1", [counter(present, 1)], NOW, NOW + 60)

    assert await backend.existing([present, absent]) == {present}
