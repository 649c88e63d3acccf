"""Strategy evaluation in the engine: order, weights, rules, splits, policy and scores.

Ratio checks use a seeded random generator or hashed subjects, so they are
deterministic; the tolerances are about four standard deviations of the sampled
share, wide enough to hold for any seed, narrow enough to catch a wrong weighting.
"""

import math
import random
from collections import Counter

import pytest

from nexus.engine.routing.config import parse_node
from nexus.engine.routing.facts import RequestFacts
from nexus.engine.routing.health import TargetHealth
from nexus.engine.routing.strategies import Selection, TargetInfo, evaluate

# Prices are nano-USD per million tokens: NANO is one USD per million tokens.
NANO = 10**9
TARGETS = {
    "eu-claude": TargetInfo(
        "1:eu-claude", "anthropic-eu", "anthropic", "eu-west-1", 3 * NANO, 15 * NANO
    ),
    "us-claude": TargetInfo(
        "2:us-claude", "anthropic-us", "anthropic", "us-east-1", 3 * NANO, 15 * NANO
    ),
    "eu-gpt": TargetInfo(
        "3:eu-gpt", "azure-eu", "azure", "eu-west-1", 2 * NANO, 8 * NANO
    ),
    "us-gpt": TargetInfo(
        "4:us-gpt", "openai", "openai", "us-east-1", 2 * NANO, 8 * NANO
    ),
    "cheap": TargetInfo(
        "5:cheap", "openai", "openai", "us-east-1", NANO // 10, NANO // 2
    ),
}


def facts(**values) -> RequestFacts:
    values.setdefault("model", "chat")
    values.setdefault("key_id", 1)
    return RequestFacts(**values)


def select(config, request=None, *, health=None, seed=0, now=1000.0, routes=None):
    selection = Selection(
        facts=request or facts(),
        describe=TARGETS.get,
        health=(health or {}).get if health else (lambda _: TargetHealth()),
        routes={name: parse_node(value) for name, value in (routes or {}).items()},
        rng=random.Random(seed),
        now=now,
    )
    if health:
        selection.health = lambda target_id: health.get(target_id, TargetHealth())
    candidates = evaluate(parse_node(config), selection)
    return [candidate.target.model for candidate in candidates], selection, candidates


def within(share: float, expected: float, samples: int) -> bool:
    sigma = math.sqrt(expected * (1 - expected) / samples)
    return abs(share - expected) <= 4 * sigma


def test_single_returns_its_target():
    order, _, candidates = select({"strategy": "single", "target": "us-gpt"})

    assert order == ["us-gpt"]
    assert candidates[0].path == "single/us-gpt"


def test_fallback_keeps_configured_order():
    order, _, _ = select(
        {"strategy": "fallback", "targets": ["us-gpt", "eu-gpt", "cheap"]}
    )

    assert order == ["us-gpt", "eu-gpt", "cheap"]


def test_loadbalance_follows_weights_within_tolerance():
    config = {
        "strategy": "loadbalance",
        "targets": [{"model": "us-gpt", "weight": 3}, {"model": "eu-gpt", "weight": 1}],
    }
    samples = 4000
    rng_seeds = range(samples)

    firsts = Counter(select(config, seed=seed)[0][0] for seed in rng_seeds)

    assert within(firsts["us-gpt"] / samples, 0.75, samples)


def test_loadbalance_puts_other_targets_after_the_pick():
    config = {"strategy": "loadbalance", "targets": ["us-gpt", "eu-gpt", "cheap"]}

    order, _, _ = select(config, seed=7)

    assert sorted(order) == ["cheap", "eu-gpt", "us-gpt"]


def test_sticky_loadbalance_keeps_subject_within_window():
    config = {
        "strategy": "loadbalance",
        "targets": ["us-gpt", "eu-gpt", "cheap"],
        "sticky": {"by": "key", "ttl_seconds": 600},
    }

    picks = {
        select(config, facts(key_id=42), seed=seed, now=10_000.0 + seed)[0][0]
        for seed in range(50)
    }

    assert len(picks) == 1


def test_sticky_loadbalance_spreads_subjects_by_weight():
    config = {
        "strategy": "loadbalance",
        "targets": [{"model": "us-gpt", "weight": 1}, {"model": "eu-gpt", "weight": 4}],
        "sticky": {"by": "user", "ttl_seconds": 600},
    }
    samples = 4000

    firsts = Counter(
        select(config, facts(user=f"user-{index}"))[0][0] for index in range(samples)
    )

    assert within(firsts["eu-gpt"] / samples, 0.8, samples)


def test_sticky_subject_moves_only_between_windows():
    config = {
        "strategy": "loadbalance",
        "targets": ["us-gpt", "eu-gpt", "cheap", "us-claude"],
        "sticky": {"by": "key", "ttl_seconds": 60},
    }
    by_window = []
    for window in range(40):
        picks = {
            select(config, facts(key_id=9), now=window * 60.0 + offset)[0][0]
            for offset in range(0, 60, 6)
        }
        by_window.append(picks)

    # A 60 s span crosses at most one window boundary, so it sees at most two picks.
    assert all(len(picks) <= 2 for picks in by_window)
    assert len(set().union(*by_window)) > 1


def test_conditional_picks_first_matching_rule():
    config = {
        "strategy": "conditional",
        "rules": [
            {"when": {"tags": "confidential"}, "then": "eu-claude"},
            {"when": {"prompt_tokens": {"gt": 1000}}, "then": "us-claude"},
            {"when": {"has_tools": True}, "then": "us-gpt"},
            {"when": {"header.x-tier": {"in": ["gold"]}}, "then": "eu-gpt"},
        ],
        "default": "cheap",
    }
    long_prompt = {"messages": [{"role": "user", "content": "x" * 8000}]}
    with_tools = {
        "messages": [],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }

    assert select(config, facts(tags=frozenset({"confidential"})))[0] == ["eu-claude"]
    assert select(config, facts(body=long_prompt))[0] == ["us-claude"]
    assert select(config, facts(body=with_tools))[0] == ["us-gpt"]
    assert select(config, facts(headers={"x-tier": "gold"}))[0] == ["eu-gpt"]
    assert select(config, facts())[0] == ["cheap"]


@pytest.mark.parametrize(
    ("when", "request_facts", "expected"),
    [
        ({"model": "chat"}, {}, True),
        ({"project": "sandbox"}, {"project": "prod"}, False),
        ({"key": {"prefix": "nx-ab"}}, {"key": "nx-abc"}, True),
        ({"metadata.team": "search"}, {"metadata": {"team": "search"}}, True),
        ({"max_tokens": {"lte": 100}}, {"max_tokens": 50}, True),
        ({"max_tokens": {"lte": 100}}, {}, False),
        (
            {"has_images": True},
            {
                "body": {
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "image_url", "image_url": {"url": "data:"}}
                            ],
                        }
                    ]
                }
            },
            True,
        ),
        ({"not": {"tags": "pii"}}, {"tags": frozenset({"pii"})}, False),
        ({"any": [{"org": "a"}, {"org": "b"}]}, {"org": "b"}, True),
        ({"user": {"matches": "^svc-"}}, {"user": "svc-batch"}, True),
        ({"header.x-debug": {"exists": False}}, {}, True),
        ({"tags": {"not_in": ["pii", "phi"]}}, {"tags": frozenset({"phi"})}, False),
    ],
)
def test_conditions_over_request_facts(when, request_facts, expected):
    config = {
        "strategy": "conditional",
        "rules": [{"when": when, "then": "us-gpt"}],
        "default": "cheap",
    }

    order, _, _ = select(config, facts(**request_facts))

    assert (order == ["us-gpt"]) is expected


def absplit(by="key"):
    return {
        "strategy": "absplit",
        "name": "prompt-v2",
        "by": by,
        "arms": [
            {"name": "control", "percent": 80, "target": "us-gpt"},
            {"name": "treatment", "percent": 20, "target": "us-claude"},
        ],
    }


def test_absplit_ratio_within_tolerance():
    samples = 10_000

    arms = Counter(
        select(absplit(), facts(key_id=index))[1].arms["prompt-v2"]
        for index in range(samples)
    )

    assert within(arms["treatment"] / samples, 0.2, samples)


def test_absplit_is_deterministic_per_subject():
    first = select(
        absplit("header:x-session"), facts(headers={"x-session": "s-1"}), seed=1
    )
    again = select(
        absplit("header:x-session"), facts(headers={"x-session": "s-1"}), seed=2
    )

    assert first[0] == again[0]
    assert first[2][0].arm == again[2][0].arm
    assert first[2][0].arm in ("prompt-v2=control", "prompt-v2=treatment")


def test_absplit_without_user_falls_back_to_key():
    with_user = select(absplit("user"), facts(key_id=5, user=""))[1].arms
    as_key = select(absplit("key"), facts(key_id=5))[1].arms

    assert with_user == as_key


def policy(**extra):
    return {
        "strategy": "policy",
        "targets": ["us-claude", "eu-claude", "us-gpt", "eu-gpt"],
        **extra,
    }


def test_policy_keeps_confidential_traffic_in_allowed_regions():
    config = policy(classifications={"confidential": {"regions": ["eu-west-1"]}})

    order, selection, _ = select(config, facts(tags=frozenset({"confidential"})))
    unclassified, _, _ = select(config, facts())

    assert order == ["eu-claude", "eu-gpt"]
    assert (
        "us-claude",
        "region us-east-1 is not allowed for confidential",
    ) in selection.excluded
    assert unclassified == ["us-claude", "eu-claude", "us-gpt", "eu-gpt"]


def test_policy_filters_providers_and_default_classification():
    config = policy(
        classifications={
            "pii": {"providers": ["anthropic"]},
            "*": {"providers": ["openai", "azure"]},
        }
    )

    assert select(config, facts(tags=frozenset({"pii"})))[0] == [
        "us-claude",
        "eu-claude",
    ]
    assert select(config, facts())[0] == ["us-gpt", "eu-gpt"]


def test_policy_cost_ceiling_uses_prompt_and_max_tokens():
    config = policy(max_cost_usd=0.01)
    prompt = {"messages": [{"role": "user", "content": "x" * 4000}]}

    cheap_enough, selection, _ = select(config, facts(body=prompt, max_tokens=500))

    # 1004 prompt tokens and 500 output: 0.0105 USD on Claude, 0.006 USD on GPT.
    assert cheap_enough == ["us-gpt", "eu-gpt"]
    assert any("over 0.01 USD" in reason for _, reason in selection.excluded)


def test_policy_requires_declared_capabilities():
    config = {
        "strategy": "policy",
        "targets": [
            {"model": "us-gpt", "capabilities": ["tools", "json_schema"]},
            {"model": "cheap", "capabilities": ["tools"]},
            "us-claude",
        ],
    }
    schema_request = facts(
        body={"messages": [], "response_format": {"type": "json_schema"}}
    )

    assert select(config, schema_request)[0] == ["us-gpt"]
    assert select(config, facts())[0] == ["us-gpt", "cheap", "us-claude"]
    explicit = dict(config, require=["tools"])
    assert select(explicit, facts())[0] == ["us-gpt", "cheap"]


def test_smart_prefers_fast_reliable_cheap_targets():
    health = {
        "3:eu-gpt": TargetHealth(requests=10, failures=5, latency_ms=200.0),
        "4:us-gpt": TargetHealth(requests=10, failures=0, latency_ms=200.0),
        "1:eu-claude": TargetHealth(requests=10, failures=0, latency_ms=800.0),
    }
    config = {"strategy": "smart", "targets": ["eu-claude", "eu-gpt", "us-gpt"]}

    order, _, _ = select(config, health=health)

    assert order == ["us-gpt", "eu-gpt", "eu-claude"]


def test_smart_weights_change_the_ranking():
    health = {
        "3:eu-gpt": TargetHealth(requests=10, failures=0, latency_ms=100.0),
        "5:cheap": TargetHealth(requests=10, failures=0, latency_ms=1000.0),
    }
    fast = {
        "strategy": "smart",
        "targets": ["cheap", "eu-gpt"],
        "weights": {"latency": 1, "price": 0, "error_rate": 0, "headroom": 0},
    }
    frugal = dict(
        fast, weights={"latency": 0, "price": 1, "error_rate": 0, "headroom": 0}
    )

    assert select(fast, health=health)[0] == ["eu-gpt", "cheap"]
    assert select(frugal, health=health)[0] == ["cheap", "eu-gpt"]


def test_smart_ranks_low_headroom_last():
    health = {
        "4:us-gpt": TargetHealth(headroom=0.05),
        "3:eu-gpt": TargetHealth(headroom=0.9),
    }
    config = {
        "strategy": "smart",
        "targets": ["us-gpt", "eu-gpt"],
        "weights": {"headroom": 1, "latency": 0, "price": 0, "error_rate": 0},
    }

    assert select(config, health=health)[0] == ["eu-gpt", "us-gpt"]


def test_nested_strategies_compose():
    config = {
        "strategy": "conditional",
        "rules": [
            {
                "when": {"tags": "confidential"},
                "then": {
                    "strategy": "policy",
                    "classifications": {"confidential": {"regions": ["eu-west-1"]}},
                    "targets": [
                        {
                            "strategy": "loadbalance",
                            "targets": ["us-claude", "eu-claude", "eu-gpt"],
                            "sticky": {"by": "key", "ttl_seconds": 300},
                        }
                    ],
                },
            }
        ],
        "default": {
            "strategy": "fallback",
            "targets": [absplit(), "cheap"],
        },
    }

    confidential, _, candidates = select(
        config, facts(tags=frozenset({"confidential"}))
    )
    public, selection, _ = select(config, facts(key_id=3))

    assert set(confidential) == {"eu-claude", "eu-gpt"}
    assert candidates[0].path.startswith("conditional[rule 0]/policy[0]/loadbalance[")
    assert public[-1] == "cheap"
    assert public[0] in ("us-gpt", "us-claude")
    assert "prompt-v2" in selection.arms


def test_route_reference_evaluates_other_route():
    order, _, candidates = select(
        {"strategy": "fallback", "targets": [{"route": "shared"}, "cheap"]},
        routes={"shared": {"strategy": "fallback", "targets": ["eu-gpt", "us-gpt"]}},
    )

    assert order == ["eu-gpt", "us-gpt", "cheap"]
    assert candidates[0].path == "fallback[0]/route:shared/fallback[0]/eu-gpt"
