"""Measure what the hooks stage adds per request, with both scanning engines.

The default hook set runs on the request stage: PII (email, phone, SSN, card,
IBAN, IP, secrets), data classification, a keyword and regex rule list, and
content safety. Prompts of about 100 and 10,000 tokens (o200k_base) carry a few
PII values; the rule list holds 10 or 400 rules. Each case reports the median and
99th percentile of the stage's wall time (segment extraction, hooks, write-back),
and the median CPU time of the thread, which other load on the machine disturbs less.

    .venv/bin/python bench/bench_hooks.py            # both engines
    .venv/bin/python bench/bench_hooks.py --engine re
"""

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bpe_openai  # noqa: E402

from nexus.engine.canonical import validate_chat_body  # noqa: E402
from nexus.engine.hooks import patterns  # noqa: E402
from nexus.engine.hooks.base import HookContext, HookServices  # noqa: E402
from nexus.engine.hooks.pipeline import HookSpec  # noqa: E402
from nexus.engine.hooks.registry import build_pipeline  # noqa: E402
from nexus.engine.hooks.segments import request_segments, write_back  # noqa: E402

WORDS = (
    "the quarterly report shows revenue growth across regions while costs stayed flat "
    "and the team plans to hire engineers for the platform migration next year"
).split()
PII = [
    "jane.placeholder@example.test",
    "078-05-1120",
    "4111 1111 1111 1111",
    "(415) 555-2671",
    "DE89 3704 0044 0532 0130 00",
]


def prompt(tokens: int, encoding) -> str:
    """Return prose of about the given number of tokens with a PII value every ~400 words."""
    generator = random.Random(tokens)
    words: list[str] = []
    while len(encoding.encode(" ".join(words))) < tokens:
        chunk = [generator.choice(WORDS) for _ in range(min(400, tokens // 2))]
        chunk.append(generator.choice(PII))
        words.extend(chunk)
    text = " ".join(words)
    while len(encoding.encode(text)) > tokens:
        text = text.rsplit(" ", 1)[0]
    return text


def rules(count: int) -> list[dict]:
    """Return count rules: keywords that never match the prompt and some regexes."""
    found = []
    for index in range(count):
        if index % 4 == 0:
            found.append(
                {
                    "id": f"r{index}",
                    "pattern": rf"\bPRJ-{index:04d}-[A-Z]{{3}}\b",
                    "caseless": False,
                }
            )
        else:
            found.append(
                {"id": f"r{index}", "keyword": f"codename{index} alpha{index}"}
            )
    return found


def specs(rule_count: int) -> list[HookSpec]:
    return [
        HookSpec(1, "pii", "pii", "request", priority=10),
        HookSpec(
            2,
            "classify",
            "classification",
            "request",
            priority=20,
            options={"pii_levels": {"us_ssn": "restricted", "card": "restricted"}},
        ),
        HookSpec(
            3,
            "lists",
            "rules",
            "request",
            priority=30,
            options={"rules": rules(rule_count), "action": "block"},
        ),
        HookSpec(4, "safety", "safety", "request", priority=40),
        HookSpec(
            5,
            "size",
            "size",
            "request",
            priority=50,
            options={"max_text_chars": 10_000_000},
        ),
    ]


async def measure(pipeline, text: str, runs: int) -> tuple[list[float], list[float]]:
    samples, cpu = [], []
    for _ in range(runs):
        body = {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": text},
            ],
        }
        request = validate_chat_body(body)
        started, started_cpu = time.perf_counter(), time.thread_time()
        segments = request_segments(request)
        outcome = await pipeline.run("request", HookContext("request"), segments)
        write_back(request, segments, outcome.texts)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        assert outcome.decision.label == "redact", outcome.decision
    return samples, cpu


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["hyperscan", "re", "both"], default="both")
    args = parser.parse_args()
    engines = ["hyperscan", "re"] if args.engine == "both" else [args.engine]
    encoding = bpe_openai.get_encoding("o200k_base")
    prompts = {tokens: prompt(tokens, encoding) for tokens in (100, 10_000)}
    out = sys.stdout
    out.write(
        "| engine | prompt tokens | rules | median ms | p99 ms | median CPU ms |\n"
    )
    out.write("|---|---:|---:|---:|---:|---:|\n")
    for engine in engines:
        if engine == "re":
            # The fallback the gateway uses when hyperscan cannot be imported.
            patterns.hyperscan = None
        for rule_count in (10, 400):
            pipeline = build_pipeline(specs(rule_count), HookServices())
            for tokens, text in prompts.items():
                runs = 300 if tokens == 100 else 40
                asyncio.run(measure(pipeline, text, 5))
                samples, cpu = asyncio.run(measure(pipeline, text, runs))
                out.write(
                    f"| {engine} | {tokens:,} | {rule_count} | "
                    f"{statistics.median(samples):.3f} | {p99(samples):.3f} | "
                    f"{statistics.median(cpu):.3f} |\n"
                )


if __name__ == "__main__":
    main()
