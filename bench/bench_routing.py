"""Measure what routing adds per request: planning a route and recording an outcome.

Runs the router in this process against an in-memory snapshot (no gateway, no
network), with health in memory, so the figures are the CPU cost of matching a
route, evaluating its strategy tree and checking circuit breakers. With --redis it
also times one background health sync round trip for 50 targets.

Usage:
    .venv/bin/python bench/bench_routing.py [--requests 20000] [--redis URL]
Prints one line per scenario: median and p99 in microseconds.
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nexus.engine.call import Call  # noqa: E402
from nexus.engine.canonical import validate_chat_body  # noqa: E402
from nexus.engine.routing.config import parse_node  # noqa: E402
from nexus.engine.routing.health import MemoryHealth  # noqa: E402
from nexus.engine.routing.outcomes import Outcome  # noqa: E402
from nexus.engine.routing.redis_health import RedisHealth  # noqa: E402
from nexus.engine.routing.router import RouteEntry, RouteTable, RoutingRouter  # noqa: E402
from nexus.engine.snapshot import (  # noqa: E402
    ConnectionEntry,
    KeyEntry,
    ModelEntry,
    Prices,
    Snapshot,
)

KEY = KeyEntry(id=1, org_id=1, project_id=1, prefix="nx", allowed_models=frozenset())
REGIONS = ["us-east-1", "eu-west-1"]
SCENARIOS = {
    "fallback (3 targets)": {"strategy": "fallback", "targets": ["m0", "m1", "m2"]},
    "loadbalance sticky (4)": {
        "strategy": "loadbalance",
        "targets": [{"model": f"m{i}", "weight": i + 1} for i in range(4)],
        "sticky": {"by": "key", "ttl_seconds": 600},
    },
    "conditional + absplit": {
        "strategy": "conditional",
        "rules": [
            {"when": {"tags": "pii"}, "then": "m0"},
            {"when": {"prompt_tokens": {"gt": 4000}}, "then": "m1"},
        ],
        "default": {
            "strategy": "absplit",
            "by": "user",
            "arms": [
                {"name": "a", "percent": 50, "target": "m2"},
                {"name": "b", "percent": 50, "target": "m3"},
            ],
        },
    },
    "policy (4 targets)": {
        "strategy": "policy",
        "classifications": {"*": {"regions": ["eu-west-1"]}},
        "max_cost_usd": 1,
        "targets": ["m0", "m1", "m2", "m3"],
    },
    "smart (4 targets)": {"strategy": "smart", "targets": ["m0", "m1", "m2", "m3"]},
}


def snapshot(config) -> Snapshot:
    connections = {
        index: ConnectionEntry(
            index, f"c{index}", "openai", "http://127.0.0.1:1", "", REGIONS[index % 2]
        )
        for index in range(4)
    }
    models = {
        f"m{index}": ModelEntry(
            index, f"m{index}", (), "chat", index, "gpt", Prices(10**9, 4 * 10**9)
        )
        for index in range(4)
    }
    extensions = {}
    if config is not None:
        route = RouteEntry(id=1, name="bench", model="m0", strategy=parse_node(config))
        extensions["routing"] = RouteTable(routes=(route,))
    return Snapshot(
        version=1, models=models, connections=connections, extensions=extensions
    )


def measure(label: str, config, requests: int) -> None:
    current = snapshot(config)
    health = MemoryHealth()
    router = RoutingRouter(lambda: current, health)
    adapters = {index: object() for index in range(4)}
    request = validate_chat_body(
        {
            "model": "m0",
            "user": "user-1",
            "messages": [
                {"role": "user", "content": "Summarise this paragraph. " * 20}
            ],
        }
    )
    model = current.models["m0"]
    plan_times, record_times = [], []
    for _ in range(requests):
        call = Call(ingress="chat", key=KEY, requested_model="m0")
        started = time.perf_counter_ns()
        plan = router.plan(call, request, model, adapters, current.connections)
        plan_times.append(time.perf_counter_ns() - started)
        started = time.perf_counter_ns()
        router.record(plan.targets[0], ok=True, latency_ms=120.0, status=200)
        record_times.append(time.perf_counter_ns() - started)
    report(f"plan: {label}", plan_times)
    report(f"record: {label}", record_times)


def report(label: str, samples: list[int]) -> None:
    ordered = sorted(samples)
    median = statistics.median(ordered) / 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] / 1000
    sys.stdout.write(f"{label:40} median {median:8.1f} us   p99 {p99:8.1f} us\n")


async def measure_sync(url: str, rounds: int) -> None:
    health = RedisHealth(url, key_prefix="bench:routing:health:")
    targets = [f"{index}:bench" for index in range(50)]
    samples = []
    for _ in range(rounds):
        for target in targets:
            health.record(target, Outcome(ok=True, latency_ms=100.0, status=200))
        started = time.perf_counter_ns()
        await health.sync(targets)
        samples.append(time.perf_counter_ns() - started)
    await health.close()
    report("redis sync: 50 targets, 1 outcome each", samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--redis", default="")
    args = parser.parse_args()

    measure("no route (default plan)", None, args.requests)
    for label, config in SCENARIOS.items():
        measure(label, config, args.requests)
    if args.redis:
        asyncio.run(measure_sync(args.redis, 500))


if __name__ == "__main__":
    main()
