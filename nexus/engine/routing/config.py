"""A route's strategy tree: its JSON form, parsed and validated into frozen nodes.

A node is one of:

- a model name (`"gpt-4o"`), or `{"model": ..., "retries": ..., "timeout_seconds": ...,
  "capabilities": [...]}` for a target with its own attempt settings;
- `{"route": "<name>"}`: the strategy of another route;
- `{"strategy": "<name>", ...}` with one of the strategies below.

Strategies and their keys:

- single: `target` (a node).
- fallback: `targets` (nodes, tried in order).
- loadbalance: `targets` (nodes, each may carry `weight` > 0, default 1) and
  optional `sticky` `{"by": <subject>, "ttl_seconds": <seconds>}`.
- conditional: `rules` (`[{"when": <condition>, "then": <node>}]`) and `default`.
- absplit: `by` (a subject), `arms` (`[{"name", "percent", "target"}]`, percents
  sum to 100) and optional `name` for the audit record.
- policy: `targets` (nodes, tried in order) filtered by `classifications`
  (`{<tag>: {"regions": [...], "providers": [...]}}`, the key `*` for requests with
  none of the tags), `max_cost_usd`, `output_tokens_estimate` and `require`.
- smart: `targets` (nodes) ordered by `weights` over latency, error_rate, price and
  headroom.

Subjects: key, user, org, project, header:<name>, metadata:<name>. Conditions are
described in nexus.engine.routing.conditions.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nexus.engine.routing.conditions import Condition, parse_condition
from nexus.engine.routing.errors import RouteConfigError
from nexus.engine.routing.facts import valid_subject

CAPABILITIES = frozenset({"tools", "vision", "json_schema"})
STRATEGIES = (
    "single",
    "fallback",
    "loadbalance",
    "conditional",
    "absplit",
    "policy",
    "smart",
)
MAX_DEPTH = 16
MAX_RETRIES = 10
SPLIT_TOTAL = 100.0


@dataclass(frozen=True)
class TargetNode:
    """One model, with optional per-target attempt settings and capabilities."""

    model: str
    retries: int | None = None
    timeout_seconds: float | None = None
    # None when the config does not declare them.
    capabilities: frozenset[str] | None = None


@dataclass(frozen=True)
class RouteRefNode:
    """The strategy of another route, by name."""

    route: str


@dataclass(frozen=True)
class SingleNode:
    target: "Node"


@dataclass(frozen=True)
class FallbackNode:
    targets: tuple["Node", ...]


@dataclass(frozen=True)
class Sticky:
    """Keep a subject on one target for ttl_seconds."""

    by: str
    ttl_seconds: float


@dataclass(frozen=True)
class LoadBalanceNode:
    targets: tuple["Node", ...]
    weights: tuple[float, ...]
    sticky: Sticky | None = None


@dataclass(frozen=True)
class Rule:
    when: Condition
    then: "Node"


@dataclass(frozen=True)
class ConditionalNode:
    rules: tuple[Rule, ...]
    default: "Node"


@dataclass(frozen=True)
class Arm:
    name: str
    percent: float
    target: "Node"


@dataclass(frozen=True)
class SplitNode:
    name: str
    by: str
    arms: tuple[Arm, ...]


@dataclass(frozen=True)
class Placement:
    """Allowed regions and providers for one data classification; None allows any."""

    regions: frozenset[str] | None = None
    providers: frozenset[str] | None = None


@dataclass(frozen=True)
class PolicyNode:
    targets: tuple["Node", ...]
    classifications: tuple[tuple[str, Placement], ...] = ()
    max_cost_usd: float | None = None
    # Output tokens assumed for the cost ceiling when the request sets no max_tokens.
    output_tokens_estimate: int = 1000
    require: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SmartWeights:
    latency: float = 1.0
    error_rate: float = 1.0
    price: float = 1.0
    headroom: float = 1.0


@dataclass(frozen=True)
class SmartNode:
    targets: tuple["Node", ...]
    weights: SmartWeights = SmartWeights()


Node = (
    TargetNode
    | RouteRefNode
    | SingleNode
    | FallbackNode
    | LoadBalanceNode
    | ConditionalNode
    | SplitNode
    | PolicyNode
    | SmartNode
)


def parse_node(data: Any, path: str = "config", depth: int = 0) -> Node:
    """Parse one node of a strategy tree, or raise RouteConfigError naming the path."""
    if depth > MAX_DEPTH:
        raise RouteConfigError(f"strategies nest deeper than {MAX_DEPTH}", path=path)
    if isinstance(data, str):
        return TargetNode(model=_name(data, path))
    if not isinstance(data, dict):
        raise RouteConfigError(
            "a node must be a model name or a JSON object", path=path
        )
    if "strategy" in data:
        return _parse_strategy(data, path, depth)
    if "route" in data:
        _only(data, {"route"}, path)
        return RouteRefNode(route=_name(data["route"], f"{path}.route"))
    if "model" in data:
        return _parse_target(data, path)
    raise RouteConfigError(
        "a node object needs 'strategy', 'model' or 'route'", path=path
    )


def _parse_strategy(data: dict[str, Any], path: str, depth: int) -> Node:
    strategy = data["strategy"]
    if strategy not in STRATEGIES:
        raise RouteConfigError(
            f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}",
            path=f"{path}.strategy",
        )
    parser = {
        "single": _parse_single,
        "fallback": _parse_fallback,
        "loadbalance": _parse_loadbalance,
        "conditional": _parse_conditional,
        "absplit": _parse_split,
        "policy": _parse_policy,
        "smart": _parse_smart,
    }[strategy]
    return parser(data, path, depth + 1)


def _parse_target(data: dict[str, Any], path: str) -> TargetNode:
    _only(data, {"model", "retries", "timeout_seconds", "capabilities"}, path)
    retries = data.get("retries")
    if retries is not None and not (_is_int(retries) and 0 <= retries <= MAX_RETRIES):
        raise RouteConfigError(
            f"retries must be an integer from 0 to {MAX_RETRIES}",
            path=f"{path}.retries",
        )
    timeout = data.get("timeout_seconds")
    if timeout is not None:
        _positive(timeout, f"{path}.timeout_seconds")
    capabilities = data.get("capabilities")
    if capabilities is not None:
        capabilities = _capabilities(capabilities, f"{path}.capabilities")
    return TargetNode(
        model=_name(data["model"], f"{path}.model"),
        retries=retries,
        timeout_seconds=None if timeout is None else float(timeout),
        capabilities=capabilities,
    )


def _parse_single(data: dict[str, Any], path: str, depth: int) -> SingleNode:
    _only(data, {"strategy", "target"}, path)
    return SingleNode(
        target=parse_node(_required(data, "target", path), f"{path}.target", depth)
    )


def _parse_fallback(data: dict[str, Any], path: str, depth: int) -> FallbackNode:
    _only(data, {"strategy", "targets"}, path)
    return FallbackNode(targets=_children(data, path, depth))


def _parse_loadbalance(data: dict[str, Any], path: str, depth: int) -> LoadBalanceNode:
    _only(data, {"strategy", "targets", "sticky"}, path)
    items = _list(data, "targets", path)
    targets, weights = [], []
    for index, item in enumerate(items):
        item_path = f"{path}.targets[{index}]"
        weight = 1.0
        if isinstance(item, dict) and "weight" in item:
            weight = _positive(item["weight"], f"{item_path}.weight")
            item = {name: value for name, value in item.items() if name != "weight"}
        targets.append(parse_node(item, item_path, depth))
        weights.append(weight)
    sticky = data.get("sticky")
    if sticky is not None:
        sticky = _parse_sticky(sticky, f"{path}.sticky")
    return LoadBalanceNode(
        targets=tuple(targets), weights=tuple(weights), sticky=sticky
    )


def _parse_sticky(data: Any, path: str) -> Sticky:
    if not isinstance(data, dict):
        raise RouteConfigError("sticky must be an object", path=path)
    _only(data, {"by", "ttl_seconds"}, path)
    by = _required(data, "by", path)
    if not valid_subject(by):
        raise RouteConfigError(_subject_help(by), path=f"{path}.by")
    ttl = _positive(_required(data, "ttl_seconds", path), f"{path}.ttl_seconds")
    return Sticky(by=by, ttl_seconds=ttl)


def _parse_conditional(data: dict[str, Any], path: str, depth: int) -> ConditionalNode:
    _only(data, {"strategy", "rules", "default"}, path)
    rules = []
    for index, item in enumerate(_list(data, "rules", path)):
        rule_path = f"{path}.rules[{index}]"
        if not isinstance(item, dict):
            raise RouteConfigError("a rule must be an object", path=rule_path)
        _only(item, {"when", "then"}, rule_path)
        when = parse_condition(_required(item, "when", rule_path), f"{rule_path}.when")
        then = parse_node(
            _required(item, "then", rule_path), f"{rule_path}.then", depth
        )
        rules.append(Rule(when=when, then=then))
    default = parse_node(_required(data, "default", path), f"{path}.default", depth)
    return ConditionalNode(rules=tuple(rules), default=default)


def _parse_split(data: dict[str, Any], path: str, depth: int) -> SplitNode:
    _only(data, {"strategy", "name", "by", "arms"}, path)
    by = _required(data, "by", path)
    if not valid_subject(by):
        raise RouteConfigError(_subject_help(by), path=f"{path}.by")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise RouteConfigError("name must be a string", path=f"{path}.name")
    arms, names = [], set()
    for index, item in enumerate(_list(data, "arms", path)):
        arm_path = f"{path}.arms[{index}]"
        if not isinstance(item, dict):
            raise RouteConfigError("an arm must be an object", path=arm_path)
        _only(item, {"name", "percent", "target"}, arm_path)
        arm_name = _name(_required(item, "name", arm_path), f"{arm_path}.name")
        if arm_name in names:
            raise RouteConfigError(
                f"arm name {arm_name!r} is used twice", path=arm_path
            )
        names.add(arm_name)
        percent = _positive(_required(item, "percent", arm_path), f"{arm_path}.percent")
        target = parse_node(
            _required(item, "target", arm_path), f"{arm_path}.target", depth
        )
        arms.append(Arm(name=arm_name, percent=percent, target=target))
    total = sum(arm.percent for arm in arms)
    if not math.isclose(total, SPLIT_TOTAL, abs_tol=1e-6):
        raise RouteConfigError(
            f"arm percents must sum to 100, got {total:g}", path=f"{path}.arms"
        )
    return SplitNode(name=name, by=by, arms=tuple(arms))


def _parse_policy(data: dict[str, Any], path: str, depth: int) -> PolicyNode:
    allowed = {
        "strategy",
        "targets",
        "classifications",
        "max_cost_usd",
        "output_tokens_estimate",
        "require",
    }
    _only(data, allowed, path)

    placements = []
    classifications = data.get("classifications", {})
    if not isinstance(classifications, dict):
        raise RouteConfigError(
            "classifications must be an object", path=f"{path}.classifications"
        )
    for tag, rule in classifications.items():
        placements.append((tag, _placement(rule, f"{path}.classifications.{tag}")))

    max_cost = data.get("max_cost_usd")
    if max_cost is not None:
        max_cost = _positive(max_cost, f"{path}.max_cost_usd")
    estimate = data.get("output_tokens_estimate", 1000)
    if not _is_int(estimate) or estimate < 0:
        raise RouteConfigError(
            "output_tokens_estimate must be an integer >= 0",
            path=f"{path}.output_tokens_estimate",
        )
    require = _capabilities(data.get("require", []), f"{path}.require")

    return PolicyNode(
        targets=_children(data, path, depth),
        classifications=tuple(placements),
        max_cost_usd=max_cost,
        output_tokens_estimate=estimate,
        require=require,
    )


def _placement(data: Any, path: str) -> Placement:
    if not isinstance(data, dict):
        raise RouteConfigError("a classification rule must be an object", path=path)
    _only(data, {"regions", "providers"}, path)
    values = {}
    for name in ("regions", "providers"):
        items = data.get(name)
        if items is None:
            values[name] = None
            continue
        if not isinstance(items, list) or not all(
            isinstance(item, str) and item for item in items
        ):
            raise RouteConfigError(
                f"{name} must be a list of non-empty strings", path=f"{path}.{name}"
            )
        values[name] = frozenset(items)
    return Placement(regions=values["regions"], providers=values["providers"])


def _parse_smart(data: dict[str, Any], path: str, depth: int) -> SmartNode:
    _only(data, {"strategy", "targets", "weights"}, path)
    weights = data.get("weights", {})
    if not isinstance(weights, dict):
        raise RouteConfigError("weights must be an object", path=f"{path}.weights")
    known = {"latency", "error_rate", "price", "headroom"}
    _only(weights, known, f"{path}.weights")
    values = {}
    for name, value in weights.items():
        if not _is_number(value) or value < 0:
            raise RouteConfigError(
                "a weight must be a number >= 0", path=f"{path}.weights.{name}"
            )
        values[name] = float(value)
    parsed = SmartWeights(**values)
    if not any(getattr(parsed, name) for name in known):
        raise RouteConfigError(
            "at least one weight must be positive", path=f"{path}.weights"
        )
    return SmartNode(targets=_children(data, path, depth), weights=parsed)


def _children(data: dict[str, Any], path: str, depth: int) -> tuple[Node, ...]:
    items = _list(data, "targets", path)
    return tuple(
        parse_node(item, f"{path}.targets[{index}]", depth)
        for index, item in enumerate(items)
    )


def _list(data: dict[str, Any], name: str, path: str) -> list[Any]:
    items = _required(data, name, path)
    if not isinstance(items, list) or not items:
        raise RouteConfigError(
            f"'{name}' must be a non-empty list", path=f"{path}.{name}"
        )
    return items


def _required(data: dict[str, Any], name: str, path: str) -> Any:
    if name not in data:
        raise RouteConfigError(f"'{name}' is required", path=path)
    return data[name]


def _only(data: dict[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RouteConfigError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            path=path,
        )


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RouteConfigError("must be a non-empty string", path=path)
    return value


def _positive(value: Any, path: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise RouteConfigError(f"must be a positive number, got {value!r}", path=path)
    return float(value)


def _capabilities(value: Any, path: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RouteConfigError("must be a list of capability names", path=path)
    unknown = sorted(set(value) - CAPABILITIES)
    if unknown:
        raise RouteConfigError(
            f"unknown capabilities {', '.join(unknown)}; use {', '.join(sorted(CAPABILITIES))}",
            path=path,
        )
    return frozenset(value)


def _subject_help(value: Any) -> str:
    return (
        f"unknown subject {value!r}; use key, user, org, project, "
        "header:<name> or metadata:<name>"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def child_nodes(node: Node) -> Iterator[Node]:
    """Yield the direct children of a node."""
    if isinstance(node, SingleNode):
        yield node.target
    elif isinstance(node, FallbackNode | LoadBalanceNode | PolicyNode | SmartNode):
        yield from node.targets
    elif isinstance(node, ConditionalNode):
        yield from (rule.then for rule in node.rules)
        yield node.default
    elif isinstance(node, SplitNode):
        yield from (arm.target for arm in node.arms)


def walk(node: Node) -> Iterator[Node]:
    """Yield node and every node below it, depth first."""
    yield node
    for child in child_nodes(node):
        yield from walk(child)


def referenced_models(node: Node) -> set[str]:
    """Return the model names the tree names directly (not through other routes)."""
    return {item.model for item in walk(node) if isinstance(item, TargetNode)}


def referenced_routes(node: Node) -> set[str]:
    """Return the names of other routes the tree refers to."""
    return {item.route for item in walk(node) if isinstance(item, RouteRefNode)}


def strategy_name(node: Node) -> str:
    """Return the strategy name of a node: a strategy, `target` or `route`."""
    names = {
        TargetNode: "target",
        RouteRefNode: "route",
        SingleNode: "single",
        FallbackNode: "fallback",
        LoadBalanceNode: "loadbalance",
        ConditionalNode: "conditional",
        SplitNode: "absplit",
        PolicyNode: "policy",
        SmartNode: "smart",
    }
    return names[type(node)]


def find_cycle(start: str, references: dict[str, set[str]]) -> list[str] | None:
    """Return a chain of route names that leads from start back to start, or None.

    references maps each route name to the routes its strategy refers to.
    """
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, chain = stack.pop()
        for target in sorted(references.get(name, ())):
            if target == start:
                return chain + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, chain + [target]))
    return None
