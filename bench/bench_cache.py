"""Measure the response cache: what it adds to a miss and how fast a hit is.

Two parts:

- layer: the cache layer alone, in this process, around a canned response. Shows the
  time per request with caching off, on an exact miss (key, lookup, capture, store),
  on an exact hit, and on semantic lookups with the bundled MiniLM model.
- gateway: a real gateway (uvicorn in a thread, SQLite, no Redis) in front of the fake
  provider, timed from an HTTP client on loopback: no cache, exact miss, exact hit.

Usage:
    .venv/bin/python bench/bench_cache.py [--requests 2000] [--redis URL]
        [--semantic] [--pgvector] [--gateway]
Prints one line per scenario: median and p99 in microseconds or milliseconds.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nexus.engine.cache.config import CacheConfig, CachePolicy, SemanticSettings  # noqa: E402
from nexus.engine.cache.embedders import LocalEmbedder, local_model_available  # noqa: E402
from nexus.engine.cache.flight import FlightTable, RedisFlightRelay  # noqa: E402
from nexus.engine.cache.layer import CacheLayer  # noqa: E402
from nexus.engine.cache.semantic import SemanticIndex  # noqa: E402
from nexus.engine.cache.store import MemoryExactStore, RedisExactStore  # noqa: E402
from nexus.engine.cache.vectors.numpy_index import NumpyIndex  # noqa: E402
from nexus.engine.call import Call  # noqa: E402
from nexus.engine.canonical import ChatResult, Usage, validate_chat_body  # noqa: E402
from nexus.engine.snapshot import ConnectionEntry, KeyEntry, ModelEntry, Prices  # noqa: E402

KEY = KeyEntry(id=1, org_id=1, project_id=1, prefix="nx", allowed_models=frozenset())
MODEL = ModelEntry(1, "gpt-bench", (), "chat", 1, "gpt-4o-mini", Prices(150, 600))
CONNECTION = ConnectionEntry(1, "fake", "openai", "http://127.0.0.1:1")
SYSTEM = "You are a helpful assistant. Answer in one short paragraph."


def answer_body(text: str) -> dict:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Echo: " + text},
                "finish_reason": "stop",
            }
        ],
    }


def request_body(text: str) -> dict:
    return {
        "model": "gpt-bench",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": text},
        ],
    }


async def one_request(layer: CacheLayer, text: str) -> None:
    """Run one request through the layer as the gateway does, without the network."""
    call = Call(ingress="chat", key=KEY, model=MODEL, connection=CONNECTION)
    request = validate_chat_body(request_body(text))
    served = await layer.on_request(call, request)
    if served is None:
        capture = layer.response_filter(call, request)
        result = ChatResult(answer_body(text), Usage(40, 20, reported=True))
        if capture is not None:
            capture.filter_result(result)
        call.usage, call.complete, call.status = result.usage, True, 200
    else:
        call.complete, call.status = True, 200
    await layer.on_complete(call, request)


async def measure(
    layer: CacheLayer, texts: list[str], drain: bool = False
) -> list[float]:
    timings = []
    for text in texts:
        started = time.perf_counter_ns()
        await one_request(layer, text)
        timings.append((time.perf_counter_ns() - started) / 1000)
        if drain:
            await layer.drain()
    return timings


def report(name: str, timings: list[float], unit: str = "us") -> None:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    scale = 1000 if unit == "ms" else 1
    median = statistics.median(ordered) / scale
    sys.stdout.write(
        f"{name:<44} n={len(ordered):<6} median {median:9.1f} {unit}"
        f"   p99 {p99 / scale:9.1f} {unit}\n"
    )


def layer_with(policy: CachePolicy | None, store, flights, index_factory=None):
    config = CacheConfig(everywhere={"": policy} if policy else {})
    return CacheLayer(
        store=store,
        flights=flights,
        config=lambda: config,
        index_factory=index_factory or (lambda settings: None),
    )


async def bench_layer(args) -> None:
    count = args.requests
    off = layer_with(None, MemoryExactStore(), FlightTable())
    report("layer: cache off", await measure(off, [f"q {i}" for i in range(count)]))
    stores = [("memory", MemoryExactStore, FlightTable)]
    if args.redis:
        stores.append(
            (
                "redis",
                lambda: RedisExactStore(args.redis),
                lambda: FlightTable(RedisFlightRelay(args.redis)),
            )
        )
    for name, store, flights in stores:
        layer = layer_with(CachePolicy(id=1), store(), flights())
        run = os.urandom(4).hex()
        misses = await measure(layer, [f"miss {run} {i}" for i in range(count)])
        report(f"layer: exact miss ({name}, store included)", misses)
        await one_request(layer, f"hit {run}")
        report(
            f"layer: exact hit ({name})", await measure(layer, [f"hit {run}"] * count)
        )
        await layer.close()
    if args.semantic:
        await bench_semantic(args)


async def bench_semantic(args) -> None:
    if not local_model_available():
        sys.stdout.write("semantic: skipped, the local model is not installed\n")
        return
    embedder = LocalEmbedder()
    await embedder.ready()
    backends = [("numpy", lambda: NumpyIndex())]
    if args.pgvector:
        import pgserver

        from nexus.engine.cache.vectors.pgvector import PgVectorIndex

        server = pgserver.get_server(tempfile.mkdtemp(), cleanup_mode="stop")
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        backends.append(("pgvector", lambda: PgVectorIndex(server.get_uri())))
    count = min(args.requests, 200)
    for name, backend in backends:
        settings = SemanticSettings(
            index=f"bench_{name}_{os.urandom(3).hex()}",
            embedding_model="local",
            dimensions=0,
            backend=name,
            timeout_seconds=30,
        )
        index = SemanticIndex(settings, embedder, backend())
        policy = CachePolicy(id=2, exact=False, coalesce=False, semantic=settings)
        layer = layer_with(
            policy, MemoryExactStore(), FlightTable(), lambda s, index=index: index
        )
        texts = [
            f"Tell me fact number {i} about the planet {i % 7}" for i in range(count)
        ]
        misses = await measure(layer, texts, drain=True)
        report(f"layer: semantic miss (local model, {name})", misses, "ms")
        hits = await measure(layer, ["Tell me a fact number 3 about planet 3"] * count)
        report(f"layer: semantic hit (local model, {name})", hits, "ms")
        await index.backend.close()


def bench_gateway(args) -> None:
    data = tempfile.mkdtemp(prefix="nexus-bench-cache-")
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="nexus.settings",
        NEXUS_DATA_DIR=data,
        NEXUS_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import httpx

    from apps.cache.models import CachePolicy as PolicyRow
    from nexus.fakeprovider.server import FakeProvider
    from tests.support.factories import make_connection, make_model, make_tenant
    from tests.support.gateway import GatewayServer

    with FakeProvider() as fake:
        connection = make_connection("openai", fake.openai_base)
        model = make_model(connection, "gpt-4o-mini").name
        cached, uncached = make_tenant(), make_tenant()
        PolicyRow.objects.create(organization=cached.org)
        server = GatewayServer().start()
        try:
            server.refresh()
            url = f"{server.url}/v1/chat/completions"
            with httpx.Client(timeout=30) as client:

                def timed(key: str, text: str) -> float:
                    started = time.perf_counter_ns()
                    response = client.post(
                        url,
                        json={**request_body(text), "model": model},
                        headers={"authorization": f"Bearer {key}"},
                    )
                    assert response.status_code == 200, response.text
                    return (time.perf_counter_ns() - started) / 1000

                for number in range(50):
                    timed(uncached.key, f"warm up {number}")
                timed(cached.key, "the hit")
                # Interleaved, so load changes on the machine hit every scenario alike.
                plain, misses, hits = [], [], []
                for number in range(args.requests // 4):
                    plain.append(timed(uncached.key, f"plain {number}"))
                    misses.append(timed(cached.key, f"miss {number}"))
                    hits.append(timed(cached.key, "the hit"))
                report("gateway: no cache (fake upstream)", plain, "ms")
                report("gateway: exact miss (fake upstream)", misses, "ms")
                report("gateway: exact hit", hits, "ms")
        finally:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--redis", default="", help="Redis URL for the Redis store runs"
    )
    parser.add_argument("--semantic", action="store_true", help="time the local model")
    parser.add_argument(
        "--pgvector", action="store_true", help="also pgvector (pgserver)"
    )
    parser.add_argument(
        "--gateway", action="store_true", help="time a real gateway too"
    )
    args = parser.parse_args()
    asyncio.run(bench_layer(args))
    if args.gateway:
        bench_gateway(args)


if __name__ == "__main__":
    main()
