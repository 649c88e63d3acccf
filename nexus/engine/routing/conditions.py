"""Rules over request facts, parsed once from JSON into predicates.

A condition is a JSON object. Each key is a fact name or a combinator, and all
keys must hold:

    {"prompt_tokens": {"gt": 8000}, "has_tools": true}
    {"any": [{"tags": "confidential"}, {"header.x-tier": {"in": ["gold", "platinum"]}}]}
    {"not": {"project": "sandbox"}}

A bare value means `eq`, except for `tags`, where it means the tag is present.
Operators: eq, ne, in, not_in, gt, gte, lt, lte, contains, prefix, matches (a
regular expression searched in the value) and exists (true or false).
"""

import re
from collections.abc import Callable
from typing import Any

from nexus.engine.routing.errors import RouteConfigError
from nexus.engine.routing.facts import FACT_NAMES, RequestFacts

Condition = Callable[[RequestFacts], bool]

NUMBER_OPERATORS = {
    "gt": lambda value, operand: value > operand,
    "gte": lambda value, operand: value >= operand,
    "lt": lambda value, operand: value < operand,
    "lte": lambda value, operand: value <= operand,
}
OPERATORS = frozenset(
    {"eq", "ne", "in", "not_in", "contains", "prefix", "matches", "exists"}
    | set(NUMBER_OPERATORS)
)
COMBINATORS = ("all", "any", "not")


def parse_condition(data: Any, path: str) -> Condition:
    """Return the predicate for a condition object, or raise RouteConfigError."""
    if not isinstance(data, dict) or not data:
        raise RouteConfigError("a condition must be a non-empty JSON object", path=path)
    parts = [_parse_entry(name, spec, f"{path}.{name}") for name, spec in data.items()]
    if len(parts) == 1:
        return parts[0]
    return lambda facts: all(part(facts) for part in parts)


def _parse_entry(name: str, spec: Any, path: str) -> Condition:
    if name in ("all", "any"):
        if not isinstance(spec, list) or not spec:
            raise RouteConfigError(f"'{name}' needs a non-empty list", path=path)
        parts = [
            parse_condition(item, f"{path}[{index}]") for index, item in enumerate(spec)
        ]
        if name == "all":
            return lambda facts: all(part(facts) for part in parts)
        return lambda facts: any(part(facts) for part in parts)
    if name == "not":
        inner = parse_condition(spec, path)
        return lambda facts: not inner(facts)
    if not _known_fact(name):
        raise RouteConfigError(
            f"unknown fact '{name}'; use one of {', '.join(sorted(FACT_NAMES))}, "
            "header.<name> or metadata.<name>",
            path=path,
        )
    if not isinstance(spec, dict):
        spec = {"contains" if name == "tags" else "eq": spec}
    if not spec:
        raise RouteConfigError("an operator object must not be empty", path=path)
    tests = [
        _parse_operator(name, operator, operand, f"{path}.{operator}")
        for operator, operand in spec.items()
    ]

    def check(facts: RequestFacts) -> bool:
        value = facts.value(name)
        return all(test(value) for test in tests)

    return check


def _known_fact(name: str) -> bool:
    if name in FACT_NAMES:
        return True
    prefix, _, rest = name.partition(".")
    return prefix in ("header", "metadata") and bool(rest)


def _parse_operator(
    fact: str, operator: str, operand: Any, path: str
) -> Callable[[Any], bool]:
    if operator not in OPERATORS:
        raise RouteConfigError(
            f"unknown operator '{operator}'; use one of {', '.join(sorted(OPERATORS))}",
            path=path,
        )
    if operator in NUMBER_OPERATORS:
        if not _is_number(operand):
            raise RouteConfigError(f"'{operator}' needs a number", path=path)
        compare = NUMBER_OPERATORS[operator]
        return lambda value: _is_number(value) and compare(value, operand)
    if operator == "exists":
        if not isinstance(operand, bool):
            raise RouteConfigError("'exists' needs true or false", path=path)
        return lambda value: _present(value) == operand
    if operator in ("in", "not_in"):
        if not isinstance(operand, list):
            raise RouteConfigError(f"'{operator}' needs a list", path=path)
        return _membership(fact, operator, operand)
    if operator == "matches":
        return _matcher(operand, path)
    if operator == "prefix":
        if not isinstance(operand, str):
            raise RouteConfigError("'prefix' needs a string", path=path)
        return lambda value: isinstance(value, str) and value.startswith(operand)
    if operator == "contains":
        return lambda value: _contains(value, operand)
    if operator == "eq":
        return lambda value: _equal(value, operand)
    return lambda value: not _equal(value, operand)


def _membership(fact: str, operator: str, operand: list) -> Callable[[Any], bool]:
    choices = list(operand)

    def inside(value: Any) -> bool:
        if isinstance(value, frozenset | set):
            return any(choice in value for choice in choices)
        return any(_equal(value, choice) for choice in choices)

    if operator == "in":
        return inside
    return lambda value: not inside(value)


def _matcher(operand: Any, path: str) -> Callable[[Any], bool]:
    if not isinstance(operand, str):
        raise RouteConfigError("'matches' needs a regular expression string", path=path)
    try:
        pattern = re.compile(operand)
    except re.error as exc:
        raise RouteConfigError(
            f"invalid regular expression: {exc}", path=path
        ) from None
    return lambda value: isinstance(value, str) and pattern.search(value) is not None


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, frozenset | set | list | tuple):
        return operand in value
    if isinstance(value, str) and isinstance(operand, str):
        return operand in value
    return False


def _equal(value: Any, operand: Any) -> bool:
    # Booleans and numbers compare by type too, so true never equals 1.
    if isinstance(value, bool) or isinstance(operand, bool):
        return (
            isinstance(value, bool) and isinstance(operand, bool) and value == operand
        )
    return value == operand


def _present(value: Any) -> bool:
    if isinstance(value, frozenset | set | str):
        return bool(value)
    return value is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
