"""Measure what quota enforcement adds to a request: reserve plus settle.

The quota stage runs in this process around a canned answer, with three rules on the
request's key (USD per calendar month, tokens per sliding minute, requests per
minute), so both stage calls touch three counters. Scenarios:

- no rules: the stage finds nothing to count (the cost of every request without quotas);
- memory: the in-process counter store;
- redis: the Redis store (one Lua call to reserve, one to settle), with --redis URL;
- tokenize only: the prompt count alone.

Each scenario runs with a short and a long prompt of prose.

Usage:
    .venv/bin/python bench/bench_quotas.py [--requests 5000] [--redis URL]
Prints one line per scenario: median and p99 in microseconds.
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nexus.engine.call import Call  # noqa: E402
from nexus.engine.canonical import Usage, validate_chat_body  # noqa: E402
from nexus.engine.quotas import estimate  # noqa: E402
from nexus.engine.quotas.backend import MemoryBackend, QuotaBackend  # noqa: E402
from nexus.engine.quotas.redis_backend import RedisBackend  # noqa: E402
from nexus.engine.quotas.rules import QuotaConfig, QuotaRule, Unit  # noqa: E402
from nexus.engine.quotas.stage import QuotaStage  # noqa: E402
from nexus.engine.quotas.windows import Window  # noqa: E402
from nexus.engine.snapshot import ConnectionEntry, KeyEntry, ModelEntry, Prices  # noqa: E402

ORG = 900_000_000 + uuid.uuid4().int % 1000
KEY = KeyEntry(
    id=1, org_id=ORG, project_id=None, prefix="nx", allowed_models=frozenset()
)
CONNECTION = ConnectionEntry(id=1, name="openai", provider_type="openai", base_url="")
MODEL = ModelEntry(
    id=1,
    name="gpt-4o-mini",
    aliases=(),
    kind="chat",
    connection_id=1,
    upstream_model="gpt-4o-mini",
    prices=Prices(input=150_000_000, output=600_000_000),
)
PROSE = (
    "The quarterly report covers revenue, churn and the hiring plan for the next "
    "two quarters, with a short note on infrastructure spend. "
)


def rules() -> tuple[QuotaRule, ...]:
    common = {"org_id": ORG, "axis": "key"}
    return (
        QuotaRule(
            id=1,
            uid=uuid.uuid4().hex[:16],
            name="spend",
            unit=Unit.USD,
            window=Window("calendar_month"),
            hard_limit=10**15,
            soft_limit=10**14,
            **common,
        ),
        QuotaRule(
            id=2,
            uid=uuid.uuid4().hex[:16],
            name="tpm",
            unit=Unit.TOKENS,
            window=Window("minute"),
            hard_limit=10**12,
            **common,
        ),
        QuotaRule(
            id=3,
            uid=uuid.uuid4().hex[:16],
            name="rpm",
            unit=Unit.REQUESTS,
            window=Window("minute"),
            hard_limit=10**12,
            **common,
        ),
    )


def request(words: int):
    text = (PROSE * (words // 20 + 1))[: words * 6]
    return validate_chat_body(
        {
            "model": "gpt-4o-mini",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": text}],
        }
    )


async def one_request(stage: QuotaStage, body) -> float:
    call = Call(ingress="chat", key=KEY, model=MODEL, connection=CONNECTION)
    started = time.perf_counter()
    await stage.on_request(call, body)
    call.usage = Usage(input_tokens=100, output_tokens=20, reported=True)
    call.complete = True
    call.ttfb_ms = 1.0
    await stage.on_complete(call, body)
    return (time.perf_counter() - started) * 1e6


async def run_stage(backend: QuotaBackend, config: QuotaConfig, requests: int, body):
    stage = QuotaStage(lambda: config, backend, reservation_seconds=660)
    for _ in range(50):
        await one_request(stage, body)
    samples = [await one_request(stage, body) for _ in range(requests)]
    await stage.close()
    return samples


async def run_tokenize(requests: int, body) -> list[float]:
    await estimate.prompt_tokens("gpt-4o-mini", body)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await estimate.prompt_tokens("gpt-4o-mini", body)
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    sys.stdout.write(f"{name:36s} median {median:8.1f} us   p99 {p99:8.1f} us\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--redis", default="", help="Redis URL for the Redis scenario.")
    args = parser.parse_args()
    counted = QuotaConfig(rules={ORG: rules()})
    empty = QuotaConfig()
    for words in (100, 2000):
        body = request(words)
        tokens = (await estimate.prompt_tokens("gpt-4o-mini", body)).tokens
        label = f"{tokens} prompt tokens"
        report(
            f"no rules, {label}",
            await run_stage(MemoryBackend(), empty, args.requests, body),
        )
        report(
            f"memory, {label}",
            await run_stage(MemoryBackend(), counted, args.requests, body),
        )
        if args.redis:
            report(
                f"redis, {label}",
                await run_stage(RedisBackend(args.redis), counted, args.requests, body),
            )
        report(f"tokenize only, {label}", await run_tokenize(args.requests, body))


if __name__ == "__main__":
    asyncio.run(main())
