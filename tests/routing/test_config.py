"""Parsing and validating strategy configs, in the engine and on save."""

import pytest
from django.core.exceptions import ValidationError

from apps.routing.models import Route
from nexus.engine.routing.config import (
    FallbackNode,
    LoadBalanceNode,
    TargetNode,
    find_cycle,
    parse_node,
)
from nexus.engine.routing.errors import RouteConfigError
from tests.support.factories import make_connection, make_model, unique


def test_model_name_is_single_target():
    assert parse_node("gpt-4o") == TargetNode(model="gpt-4o")


def test_nested_strategies_parse():
    node = parse_node(
        {
            "strategy": "fallback",
            "targets": [
                {
                    "strategy": "loadbalance",
                    "targets": [{"model": "a", "weight": 3}, "b"],
                },
                {"model": "c", "retries": 2, "timeout_seconds": 5},
            ],
        }
    )

    assert isinstance(node, FallbackNode)
    balance = node.targets[0]
    assert isinstance(balance, LoadBalanceNode)
    assert balance.weights == (3.0, 1.0)
    assert node.targets[1] == TargetNode(model="c", retries=2, timeout_seconds=5.0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strategy": "fallback", "targets": []}, "non-empty list"),
        ({"strategy": "fallback"}, "'targets' is required"),
        (
            {"strategy": "loadbalance", "targets": [{"model": "a", "weight": 0}]},
            "positive",
        ),
        (
            {"strategy": "loadbalance", "targets": [{"model": "a", "weight": -2}]},
            "positive",
        ),
        ({"strategy": "round-robin", "targets": ["a"]}, "unknown strategy"),
        ({"strategy": "single", "target": ""}, "non-empty string"),
        ({"strategy": "fallback", "targets": ["a"], "extra": 1}, "unknown key"),
        (
            {
                "strategy": "absplit",
                "by": "key",
                "arms": [
                    {"name": "a", "percent": 60, "target": "x"},
                    {"name": "b", "percent": 30, "target": "y"},
                ],
            },
            "sum to 100",
        ),
        (
            {
                "strategy": "absplit",
                "by": "cookie",
                "arms": [{"name": "a", "percent": 100, "target": "x"}],
            },
            "unknown subject",
        ),
        (
            {
                "strategy": "conditional",
                "rules": [{"when": {"colour": "red"}, "then": "a"}],
                "default": "b",
            },
            "unknown fact",
        ),
        (
            {
                "strategy": "conditional",
                "rules": [{"when": {"prompt_tokens": {"gt": "many"}}, "then": "a"}],
                "default": "b",
            },
            "needs a number",
        ),
        (
            {"strategy": "conditional", "rules": [{"when": {}, "then": "a"}]},
            "non-empty",
        ),
        (
            {"strategy": "policy", "targets": ["a"], "require": ["telepathy"]},
            "unknown capabilities",
        ),
        (
            {
                "strategy": "smart",
                "targets": ["a"],
                "weights": {"latency": 0, "price": 0, "error_rate": 0, "headroom": 0},
            },
            "positive",
        ),
        ({"model": "a", "retries": 99}, "retries"),
        (42, "model name or a JSON object"),
    ],
)
def test_invalid_config_is_rejected(config, message):
    with pytest.raises(RouteConfigError) as caught:
        parse_node(config)

    assert message in str(caught.value)


def test_error_names_the_bad_path():
    config = {
        "strategy": "fallback",
        "targets": [
            "a",
            {"strategy": "loadbalance", "targets": [{"model": "b", "weight": 0}]},
        ],
    }

    with pytest.raises(RouteConfigError) as caught:
        parse_node(config)

    assert caught.value.path == "config.targets[1].targets[0].weight"


def test_find_cycle_follows_references():
    references = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert find_cycle("a", references) == ["a", "b", "c", "a"]
    assert find_cycle("d", references) is None


@pytest.fixture
def models(db):
    connection = make_connection("openai", "http://127.0.0.1:9/v1")
    chat = make_model(connection, "gpt-4o")
    other = make_model(connection, "gpt-4o-mini", aliases=[unique("alias")])
    embed = make_model(connection, "text-embedding-3-small", kind="embeddings")
    return chat, other, embed


def make_route(model, config, **fields) -> Route:
    return Route(
        name=fields.pop("name", unique("route")), model=model, config=config, **fields
    )


def saved(route: Route) -> Route:
    route.full_clean()
    route.save()
    return route


def test_valid_route_saves(models):
    chat, other, _ = models

    route = saved(
        make_route(
            chat.name,
            {"strategy": "fallback", "targets": [chat.name, other.aliases[0]]},
        )
    )

    assert route.pk is not None


def test_unknown_model_is_rejected_on_save(models):
    chat, _, _ = models

    with pytest.raises(ValidationError) as caught:
        make_route(
            chat.name, {"strategy": "fallback", "targets": [chat.name, "nope"]}
        ).full_clean()

    assert 'Model "nope" does not exist.' in caught.value.message_dict["config"]


def test_route_model_must_exist(models):
    with pytest.raises(ValidationError) as caught:
        make_route("missing-model", "missing-model").full_clean()

    assert "model" in caught.value.message_dict


def test_model_kind_must_match(models):
    chat, _, embed = models

    with pytest.raises(ValidationError) as caught:
        make_route(
            chat.name, {"strategy": "fallback", "targets": [chat.name, embed.name]}
        ).full_clean()

    assert "embeddings model" in caught.value.message_dict["config"][0]


def test_reference_cycle_is_rejected(models):
    chat, other, _ = models
    first = saved(make_route(chat.name, chat.name))
    second = saved(make_route(other.name, {"route": first.name}))

    first.config = {
        "strategy": "fallback",
        "targets": [chat.name, {"route": second.name}],
    }
    with pytest.raises(ValidationError) as caught:
        first.full_clean()

    assert "cycle" in caught.value.message_dict["config"][0]


def test_reference_to_missing_route_is_rejected(models):
    chat, _, _ = models

    with pytest.raises(ValidationError) as caught:
        make_route(chat.name, {"route": "no-such-route"}).full_clean()

    assert (
        'Route "no-such-route" does not exist.' in caught.value.message_dict["config"]
    )


def test_renaming_a_referenced_route_is_rejected(models):
    chat, other, _ = models
    first = saved(make_route(chat.name, chat.name))
    saved(make_route(other.name, {"route": first.name}))

    first.name = unique("renamed")
    with pytest.raises(ValidationError) as caught:
        first.full_clean()

    assert "name" in caught.value.message_dict


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"match_headers": {"x-tier": 1}}, "match_headers"),
        ({"match_metadata": ["team"]}, "match_metadata"),
        ({"failover_statuses": [200]}, "failover_statuses"),
        ({"backoff_seconds": 0}, "backoff_seconds"),
        ({"backoff_seconds": 2, "max_backoff_seconds": 1}, "max_backoff_seconds"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
    ],
)
def test_invalid_route_fields_are_rejected(models, fields, field):
    chat, _, _ = models

    with pytest.raises(ValidationError) as caught:
        make_route(chat.name, chat.name, **fields).full_clean()

    assert field in caught.value.message_dict


def test_header_names_are_stored_lowercase(models):
    chat, _, _ = models

    route = saved(make_route(chat.name, chat.name, match_headers={"X-Tier": "gold"}))

    assert route.match_headers == {"x-tier": "gold"}
