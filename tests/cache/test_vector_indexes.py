"""Every vector index backend passes the same contract."""

import time
import uuid

import numpy as np
import pytest

from nexus.engine.cache.embedders import unit_rows
from nexus.engine.cache.vectors.base import IndexSpec, VectorEntry
from nexus.engine.cache.vectors.numpy_index import NumpyIndex

BACKENDS = ["numpy", "pgvector", "redis"]


@pytest.fixture(params=BACKENDS)
async def index(request):
    if request.param == "numpy":
        backend = NumpyIndex()
    elif request.param == "pgvector":
        from nexus.engine.cache.vectors.pgvector import PgVectorIndex

        backend = PgVectorIndex(request.getfixturevalue("pgvector_url"))
    else:
        from nexus.engine.cache.vectors.redis_search import RedisSearchIndex

        backend = RedisSearchIndex(request.getfixturevalue("redis_search_url"))
    yield backend
    await backend.close()


@pytest.fixture
def spec():
    return IndexSpec(name=f"t_{uuid.uuid4().hex[:12]}", model="test-model", dimension=4)


def vector(*values) -> np.ndarray:
    return unit_rows(np.array(values, dtype=np.float32))[0]


def entry(entry_id, values, scope="scope-a", org=1, ttl=60.0) -> VectorEntry:
    return VectorEntry(
        entry_id=entry_id,
        scope=scope,
        org_id=org,
        vector=vector(*values),
        payload=f"payload-{entry_id}".encode(),
        expires_at=time.time() + ttl,
    )


async def test_first_ensure_creates_and_second_keeps(index, spec):
    assert await index.ensure(spec) is True
    assert await index.ensure(spec) is False
    assert await index.count(spec) == 0


async def test_nearest_entry_above_threshold_is_found(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))
    await index.add(spec, entry("b" * 64, (0.9, 0.1, 0, 0)))
    await index.add(spec, entry("c" * 64, (0, 0, 1, 0)))

    match = await index.search(spec, "scope-a", vector(1, 0.05, 0, 0), 0.9, time.time())

    assert match is not None
    assert match.entry_id == "a" * 64
    assert match.similarity == pytest.approx(0.9988, abs=1e-3)
    assert match.payload == b"payload-" + b"a" * 64


async def test_nothing_below_threshold_is_returned(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))

    assert (
        await index.search(spec, "scope-a", vector(0, 1, 0, 0), 0.5, time.time())
        is None
    )


async def test_scopes_are_isolated(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0), scope="scope-a"))

    assert (
        await index.search(spec, "scope-b", vector(1, 0, 0, 0), 0.5, time.time())
        is None
    )


async def test_expired_entries_are_not_returned(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0), ttl=2))

    later = time.time() + 5

    assert await index.search(spec, "scope-a", vector(1, 0, 0, 0), 0.5, later) is None


async def test_changed_dimension_rebuilds_the_index(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))
    wider = IndexSpec(spec.name, spec.model, 6, spec.generation)

    rebuilt = await index.ensure(wider)
    await index.add(wider, VectorEntry(
        "b" * 64, "scope-a", 1, vector(1, 0, 0, 0, 0, 0), b"x", time.time() + 60
    ))  # fmt: skip

    assert rebuilt is True
    assert await index.count(wider) == 1


async def test_changed_model_rebuilds_the_index(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))
    other = IndexSpec(spec.name, "other-model", spec.dimension, spec.generation)

    assert await index.ensure(other) is True
    assert await index.count(other) == 0


async def test_new_generation_empties_the_index(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))
    dropped = IndexSpec(spec.name, spec.model, spec.dimension, spec.generation + 1)

    assert await index.ensure(dropped) is True
    assert (
        await index.search(dropped, "scope-a", vector(1, 0, 0, 0), 0.5, time.time())
        is None
    )


async def test_drop_deletes_everything(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))

    await index.drop(spec)

    assert await index.count(spec) == 0
    assert await index.ensure(spec) is True


async def test_purge_removes_one_org_only(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0), org=1))
    await index.add(spec, entry("b" * 64, (0, 1, 0, 0), org=2))

    removed = await index.purge(spec, 1)

    assert removed == 1
    assert (
        await index.search(spec, "scope-a", vector(1, 0, 0, 0), 0.5, time.time())
        is None
    )
    assert await index.search(spec, "scope-a", vector(0, 1, 0, 0), 0.5, time.time())


async def test_delete_removes_one_entry(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))

    await index.delete(spec, "a" * 64)

    assert await index.count(spec) == 0


async def test_adding_the_same_id_replaces_it(index, spec):
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0)))
    await index.add(spec, entry("a" * 64, (0, 1, 0, 0)))

    match = await index.search(spec, "scope-a", vector(0, 1, 0, 0), 0.9, time.time())

    assert await index.count(spec) == 1
    assert match is not None


async def test_numpy_index_evicts_when_full():
    index = NumpyIndex(max_entries=2)
    spec = IndexSpec("bounded", "m", 4)
    await index.ensure(spec)
    await index.add(spec, entry("a" * 64, (1, 0, 0, 0), ttl=10))
    await index.add(spec, entry("b" * 64, (0, 1, 0, 0), ttl=20))

    await index.add(spec, entry("c" * 64, (0, 0, 1, 0), ttl=30))

    assert await index.count(spec) == 2
    assert (
        await index.search(spec, "scope-a", vector(1, 0, 0, 0), 0.9, time.time())
        is None
    )
