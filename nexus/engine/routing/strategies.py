"""Evaluate a strategy tree for one request into an ordered list of candidates.

The first candidate is tried first and the others follow on retryable failure.
Each strategy orders its children:

- single and fallback keep the configured order;
- loadbalance draws a weighted random order (Efraimidis-Spirakis). The first child
  is a weighted random pick and the rest are the failover order. With `sticky` the
  draw comes from a hash of the subject and a time window instead (weighted
  rendezvous hashing), so a subject keeps its order for the window;
- conditional keeps the children of the first rule that holds, else the default;
- absplit keeps one arm, chosen by a hash of the subject;
- policy drops targets that break its placement, cost or capability rules;
- smart sorts the targets by a weighted score of latency, error rate, price and
  rate-limit headroom.

Circuit breakers are applied by the router after this, on the flat list.
"""

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nexus.engine.routing.config import (
    ConditionalNode,
    FallbackNode,
    LoadBalanceNode,
    Node,
    PolicyNode,
    RouteRefNode,
    SingleNode,
    SmartNode,
    SplitNode,
    TargetNode,
)
from nexus.engine.routing.facts import RequestFacts
from nexus.engine.routing.health import TargetHealth

NANO_PER_USD = 10**9
TOKENS_PER_PRICE_UNIT = 1_000_000


@dataclass(frozen=True)
class TargetInfo:
    """A model's identity, place and prices, as strategies read them.

    Prices are nano-USD per million tokens.
    """

    target_id: str
    provider: str
    provider_type: str
    region: str
    input_price: int = 0
    output_price: int = 0


@dataclass(frozen=True)
class Candidate:
    """A target a strategy chose, with the strategy path that led to it."""

    target: TargetNode
    path: str
    arms: tuple[tuple[str, str], ...] = ()

    @property
    def arm(self) -> str:
        return ",".join(f"{name}={arm}" for name, arm in self.arms)


@dataclass
class Selection:
    """The inputs and the record of one evaluation."""

    facts: RequestFacts
    describe: Callable[[str], TargetInfo | None]
    health: Callable[[str], TargetHealth]
    routes: Mapping[str, Node] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    now: float = 0.0
    # The arm each split chose, by split name.
    arms: dict[str, str] = field(default_factory=dict)
    # (model, reason) for targets a policy or a missing model excluded.
    excluded: list[tuple[str, str]] = field(default_factory=list)
    visiting: set[str] = field(default_factory=set)


def evaluate(
    node: Node, selection: Selection, path: str = "", arms: tuple = ()
) -> list[Candidate]:
    """Return the candidates of node in the order they should be tried."""
    if isinstance(node, TargetNode):
        return [Candidate(node, _join(path, node.model), arms)]
    if isinstance(node, RouteRefNode):
        return _evaluate_reference(node, selection, path, arms)
    if isinstance(node, SingleNode):
        return evaluate(node.target, selection, _join(path, "single"), arms)
    if isinstance(node, FallbackNode):
        return _in_order(
            node.targets, range(len(node.targets)), selection, path, "fallback", arms
        )
    if isinstance(node, LoadBalanceNode):
        order = _loadbalance_order(node, selection, path)
        return _in_order(node.targets, order, selection, path, "loadbalance", arms)
    if isinstance(node, ConditionalNode):
        return _evaluate_conditional(node, selection, path, arms)
    if isinstance(node, SplitNode):
        return _evaluate_split(node, selection, path, arms)
    if isinstance(node, PolicyNode):
        return _evaluate_policy(node, selection, path, arms)
    if isinstance(node, SmartNode):
        return _evaluate_smart(node, selection, path, arms)
    raise TypeError(f"unknown node type {type(node).__name__}")


def _join(path: str, part: str) -> str:
    return f"{path}/{part}" if path else part


def _in_order(
    children: tuple[Node, ...],
    order,
    selection: Selection,
    path: str,
    label: str,
    arms: tuple,
) -> list[Candidate]:
    found: list[Candidate] = []
    for index in order:
        found.extend(
            evaluate(children[index], selection, _join(path, f"{label}[{index}]"), arms)
        )
    return found


def _evaluate_reference(
    node: RouteRefNode, selection: Selection, path: str, arms: tuple
) -> list[Candidate]:
    target = selection.routes.get(node.route)
    # Validation rejects cycles on save; the guard covers rows saved before a rename.
    if target is None or node.route in selection.visiting:
        selection.excluded.append((f"route:{node.route}", "route not available"))
        return []
    selection.visiting.add(node.route)
    try:
        return evaluate(target, selection, _join(path, f"route:{node.route}"), arms)
    finally:
        selection.visiting.discard(node.route)


def _loadbalance_order(
    node: LoadBalanceNode, selection: Selection, path: str
) -> list[int]:
    if node.sticky is None:
        draws = [selection.rng.random() for _ in node.targets]
    else:
        subject = selection.facts.subject(node.sticky.by)
        ttl = node.sticky.ttl_seconds
        # Windows start at a per-subject offset, so subjects do not all move at once.
        offset = unit_hash("sticky-offset", subject) * ttl
        window = math.floor((selection.now + offset) / ttl)
        draws = [
            unit_hash(f"sticky:{path}:{index}:{window}", subject)
            for index in range(len(node.targets))
        ]
    keys = [
        math.log(draw) / weight
        for draw, weight in zip(draws, node.weights, strict=True)
    ]
    return sorted(range(len(keys)), key=lambda index: keys[index], reverse=True)


def _evaluate_conditional(
    node: ConditionalNode, selection: Selection, path: str, arms: tuple
) -> list[Candidate]:
    for index, rule in enumerate(node.rules):
        if rule.when(selection.facts):
            return evaluate(
                rule.then, selection, _join(path, f"conditional[rule {index}]"), arms
            )
    return evaluate(node.default, selection, _join(path, "conditional[default]"), arms)


def _evaluate_split(
    node: SplitNode, selection: Selection, path: str, arms: tuple
) -> list[Candidate]:
    name = node.name or path or "absplit"
    arm = split_arm(node, name, selection.facts.subject(node.by))
    selection.arms[name] = arm.name
    return evaluate(
        arm.target,
        selection,
        _join(path, f"absplit[{arm.name}]"),
        arms + ((name, arm.name),),
    )


def split_arm(node: SplitNode, name: str, subject: str):
    """Return the arm a subject falls in: the same arm for the same subject, always."""
    point = unit_hash(f"split:{name}", subject) * 100.0
    total = 0.0
    for arm in node.arms:
        total += arm.percent
        if point < total:
            return arm
    return node.arms[-1]


def unit_hash(salt: str, subject: str) -> float:
    """Map salt and subject to a number in (0, 1), the same in every process."""
    digest = hashlib.blake2b(f"{salt}\x00{subject}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


def _evaluate_policy(
    node: PolicyNode, selection: Selection, path: str, arms: tuple
) -> list[Candidate]:
    found = _in_order(
        node.targets, range(len(node.targets)), selection, path, "policy", arms
    )
    placements = _placements(node, selection.facts.tags)
    needed = node.require | selection.facts.capabilities_needed()
    allowed = []
    for candidate in found:
        reason = _policy_violation(
            node, candidate.target, selection, placements, needed
        )
        if reason:
            selection.excluded.append((candidate.target.model, reason))
        else:
            allowed.append(candidate)
    return allowed


def _placements(node: PolicyNode, tags: frozenset[str]):
    rules = dict(node.classifications)
    chosen = [(tag, rules[tag]) for tag in sorted(tags) if tag in rules]
    if not chosen and "*" in rules:
        chosen = [("*", rules["*"])]
    return chosen


def _policy_violation(node, target, selection, placements, needed) -> str:
    info = selection.describe(target.model)
    if info is None:
        return "model not available"
    for tag, placement in placements:
        if placement.regions is not None and info.region not in placement.regions:
            return f"region {info.region or 'unset'} is not allowed for {tag}"
        if placement.providers is not None and not (
            {info.provider, info.provider_type} & placement.providers
        ):
            return f"provider {info.provider} is not allowed for {tag}"
    missing = needed - (target.capabilities or frozenset())
    if missing:
        return f"lacks capabilities {', '.join(sorted(missing))}"
    if node.max_cost_usd is not None:
        cost = estimated_cost_usd(info, selection.facts, node.output_tokens_estimate)
        if cost > node.max_cost_usd:
            return f"estimated cost {cost:.6f} USD is over {node.max_cost_usd:g} USD"
    return ""


def estimated_cost_usd(
    info: TargetInfo, facts: RequestFacts, output_estimate: int
) -> float:
    """Estimate one request's cost on a target from prompt size and max_tokens."""
    output_tokens = (
        facts.max_tokens if facts.max_tokens is not None else output_estimate
    )
    nano = (
        facts.prompt_tokens * info.input_price + output_tokens * info.output_price
    ) / TOKENS_PER_PRICE_UNIT
    return nano / NANO_PER_USD


def _evaluate_smart(
    node: SmartNode, selection: Selection, path: str, arms: tuple
) -> list[Candidate]:
    found = _in_order(
        node.targets, range(len(node.targets)), selection, path, "smart", arms
    )
    scores = smart_scores(
        node, [candidate.target.model for candidate in found], selection
    )
    ranked = sorted(range(len(found)), key=lambda index: (-scores[index], index))
    return [found[index] for index in ranked]


def smart_scores(
    node: SmartNode, models: list[str], selection: Selection
) -> list[float]:
    """Return a score from 0 to 1 per model; higher is better.

    Each measure is relative to the best candidate: latency as fastest/latency,
    price as cheapest/price, then 1 - error rate and the rate-limit headroom. A
    measure that is unknown for a target (no recent samples, no headers) scores 1,
    so new or idle targets get traffic and fresh measurements.
    """
    infos = [selection.describe(model) for model in models]
    healths = [
        selection.health(info.target_id) if info else TargetHealth() for info in infos
    ]
    latencies = [health.latency_ms for health in healths if health.latency_ms]
    fastest = min(latencies) if latencies else None
    prices = [info.input_price + info.output_price for info in infos if info]
    cheapest = min((price for price in prices if price > 0), default=None)
    weights = node.weights
    total_weight = (
        weights.latency + weights.error_rate + weights.price + weights.headroom
    )
    scores = []
    for info, health in zip(infos, healths, strict=True):
        if info is None:
            scores.append(-1.0)
            continue
        latency_score = (
            fastest / health.latency_ms if fastest and health.latency_ms else 1.0
        )
        price = info.input_price + info.output_price
        price_score = cheapest / price if cheapest and price > 0 else 1.0
        error_score = 1.0 - health.error_rate
        headroom_score = 1.0 if health.headroom is None else health.headroom
        score = (
            weights.latency * latency_score
            + weights.error_rate * error_score
            + weights.price * price_score
            + weights.headroom * headroom_score
        ) / total_weight
        scores.append(score)
    return scores
