"""Each strategy end to end: routes from the database, requests through the gateway."""

from collections import Counter

import pytest

from nexus.engine.stages import Stage
from tests.support.factories import make_connection, make_model, make_tenant


class TagStage(Stage):
    """Stand in for a hook that classifies the request by a header."""

    name = "tagger"

    async def on_request(self, call, request):
        label = call.headers.get("x-test-classification")
        if label:
            call.tags.add(label)
        return None


@pytest.fixture
def tagger(gateway):
    stage = TagStage()
    gateway.runtime.stages.insert(0, stage)
    yield stage
    gateway.runtime.stages.remove(stage)


def test_single_route_names_itself(routing):
    model = routing.model("gpt-4o")
    route = routing.route(model, {"strategy": "single", "target": model.name})

    response = routing.chat(model.name)

    assert response.status_code == 200
    assert response.headers["x-nexus-route"] == route.name
    assert response.headers["x-nexus-attempts"] == "1"


def test_route_sends_to_another_model(routing):
    public = routing.model("gpt-public")
    private = routing.model("gpt-private")
    routing.route(public, private.name)

    response = routing.chat(public.name)

    assert response.headers["x-nexus-model"] == private.name
    assert routing.upstream_models() == ["gpt-private"]


def test_sticky_loadbalance_keeps_a_key_on_one_target(routing):
    first = routing.model("gpt-a")
    second = routing.model("gpt-b")
    routing.route(
        first,
        {
            "strategy": "loadbalance",
            "targets": [first.name, second.name],
            "sticky": {"by": "key", "ttl_seconds": 3600},
        },
    )
    other_keys = [make_tenant().key for _ in range(12)]

    mine = {routing.chat(first.name).headers["x-nexus-model"] for _ in range(8)}
    theirs = {
        routing.chat(first.name, key=key).headers["x-nexus-model"] for key in other_keys
    }

    assert len(mine) == 1
    assert theirs == {first.name, second.name}


def test_loadbalance_spreads_requests(routing):
    first = routing.model("gpt-a")
    second = routing.model("gpt-b")
    routing.route(
        first,
        {
            "strategy": "loadbalance",
            "targets": [
                {"model": first.name, "weight": 1},
                {"model": second.name, "weight": 1},
            ],
        },
    )

    served = Counter(
        routing.chat(first.name).headers["x-nexus-model"] for _ in range(30)
    )

    # Each side is drawn with probability 1/2; all 30 on one side has odds of 2e-9.
    assert set(served) == {first.name, second.name}


def test_absplit_arm_is_recorded_in_audit(routing):
    control = routing.model("gpt-control")
    treatment = routing.model("gpt-treatment")
    routing.route(
        control,
        {
            "strategy": "absplit",
            "name": "reply-style",
            "by": "user",
            "arms": [
                {"name": "control", "percent": 50, "target": control.name},
                {"name": "treatment", "percent": 50, "target": treatment.name},
            ],
        },
    )

    responses = [
        routing.chat(control.name, user=f"user-{index}") for index in range(16)
    ]
    again = routing.chat(control.name, user="user-0")

    arms = {}
    for response in responses:
        event = routing.audit(response)
        arm = event.details["routing"]["arms"]["reply-style"]
        served = {"control": control.name, "treatment": treatment.name}[arm]
        assert event.model == served
        assert event.details["attempts"][0]["arm"] == f"reply-style={arm}"
        arms[response.headers["x-request-id"]] = arm
    assert set(arms.values()) == {"control", "treatment"}
    assert again.headers["x-nexus-model"] == responses[0].headers["x-nexus-model"]


def test_conditional_reads_headers_and_prompt_size(routing):
    small = routing.model("gpt-small")
    large = routing.model("gpt-large")
    gold = routing.model("gpt-gold")
    routing.route(
        small,
        {
            "strategy": "conditional",
            "rules": [
                {"when": {"header.x-tier": "gold"}, "then": gold.name},
                {"when": {"prompt_tokens": {"gt": 2000}}, "then": large.name},
            ],
            "default": small.name,
        },
    )
    long_prompt = [{"role": "user", "content": "word " * 4000}]

    assert routing.chat(small.name).headers["x-nexus-model"] == small.name
    assert (
        routing.chat(small.name, messages=long_prompt).headers["x-nexus-model"]
        == large.name
    )
    tier = routing.chat(small.name, headers={"x-tier": "gold"})
    assert tier.headers["x-nexus-model"] == gold.name


def test_conditional_reads_tags_set_by_hooks(routing, tagger):
    general = routing.model("gpt-general")
    restricted = routing.model("gpt-restricted")
    routing.route(
        general,
        {
            "strategy": "conditional",
            "rules": [{"when": {"tags": "pii"}, "then": restricted.name}],
            "default": general.name,
        },
    )

    tagged = routing.chat(general.name, headers={"x-test-classification": "pii"})
    plain = routing.chat(general.name)

    assert tagged.headers["x-nexus-model"] == restricted.name
    assert plain.headers["x-nexus-model"] == general.name


def test_policy_keeps_classified_traffic_in_region(routing, tagger, fake_provider):
    eu = make_connection("openai", fake_provider.openai_base, region="eu-west-1")
    us = make_model(routing.openai, "gpt-us")
    eu_model = make_model(eu, "gpt-eu")
    routing.route(
        us,
        {
            "strategy": "policy",
            "classifications": {"confidential": {"regions": ["eu-west-1"]}},
            "targets": [us.name, eu_model.name],
        },
    )

    confidential = routing.chat(
        us.name, headers={"x-test-classification": "confidential"}
    )
    public = routing.chat(us.name)

    assert confidential.headers["x-nexus-model"] == eu_model.name
    assert public.headers["x-nexus-model"] == us.name
    excluded = routing.audit(confidential).details["routing"]["excluded"]
    assert excluded == [
        {"model": us.name, "reason": "region unset is not allowed for confidential"}
    ]


def test_policy_without_allowed_target_rejects(routing, tagger):
    model = routing.model("gpt-us")
    route = routing.route(
        model,
        {
            "strategy": "policy",
            "classifications": {"confidential": {"providers": ["anthropic"]}},
            "targets": [model.name],
        },
    )

    response = routing.chat(
        model.name, headers={"x-test-classification": "confidential"}
    )

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "no_allowed_target"
    assert route.name in error["message"]
    assert routing.fake.requests == []


def test_smart_prefers_the_cheaper_target_without_measurements(routing):
    expensive = routing.model("gpt-expensive", input_price="10", output_price="30")
    cheap = routing.model("gpt-cheap", input_price="0.1", output_price="0.4")
    routing.route(
        expensive,
        {
            "strategy": "smart",
            "targets": [expensive.name, cheap.name],
            "weights": {"price": 1, "latency": 0, "error_rate": 0, "headroom": 0},
        },
    )

    response = routing.chat(expensive.name)

    assert response.headers["x-nexus-model"] == cheap.name


def test_route_matches_only_its_key(routing):
    model = routing.model("gpt-default")
    special = routing.model("gpt-special")
    other = make_tenant(org=routing.tenant.org)
    routing.route(model, special.name, key=other.key_row)

    assert routing.chat(model.name).headers["x-nexus-model"] == model.name
    assert (
        routing.chat(model.name, key=other.key).headers["x-nexus-model"] == special.name
    )


def test_route_matches_metadata_and_priority(routing):
    model = routing.model("gpt-default")
    batch = routing.model("gpt-batch")
    first = routing.model("gpt-first")
    routing.route(model, batch.name, match_metadata={"lane": "batch"}, priority=50)
    routing.route(model, first.name, priority=10, match_headers={"x-lane": "first"})

    lane = routing.chat(model.name, metadata={"lane": "batch"})
    both = routing.chat(
        model.name, metadata={"lane": "batch"}, headers={"X-Lane": "first"}
    )

    assert lane.headers["x-nexus-model"] == batch.name
    assert both.headers["x-nexus-model"] == first.name
