"""Exact-cache keys: every answer-changing field changes the key, nothing else does."""

import copy

import pytest

from nexus.engine.cache.keys import (
    IGNORED_FIELDS,
    KeyContext,
    SemanticRules,
    exact_key,
    semantic_exclusion,
    semantic_query,
)
from nexus.engine.canonical import ChatRequest, validate_chat_body

CONTEXT = KeyContext(
    scope="org:1/project:2",
    generation=0,
    model="gpt-test",
    upstream_model="gpt-4o-mini",
    connection_id=3,
)
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}
BASE = {
    "model": "gpt-test",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France? One word."},
    ],
    "temperature": 0,
    "max_tokens": 16,
}

# Each changes what the model may answer, so each must change the key.
ANSWER_CHANGES = {
    "temperature": {"temperature": 0.7},
    "temperature omitted": {"temperature": None},
    "top_p": {"top_p": 0.5},
    "max_tokens": {"max_tokens": 4000},
    "max_completion_tokens": {"max_completion_tokens": 16},
    "stop": {"stop": ["\n"]},
    "seed": {"seed": 7},
    "n": {"n": 2},
    "logprobs": {"logprobs": True},
    "top_logprobs": {"logprobs": True, "top_logprobs": 3},
    "presence_penalty": {"presence_penalty": 0.5},
    "frequency_penalty": {"frequency_penalty": 0.5},
    "logit_bias": {"logit_bias": {"50256": -100}},
    "tools": {"tools": [TOOL]},
    "tool_choice auto": {"tools": [TOOL], "tool_choice": "auto"},
    "tool_choice none": {"tools": [TOOL], "tool_choice": "none"},
    "parallel_tool_calls": {"parallel_tool_calls": False},
    "response_format": {"response_format": {"type": "json_object"}},
    "reasoning_effort": {"reasoning_effort": "high"},
    "modalities": {"modalities": ["text", "audio"]},
    "prediction": {"prediction": {"type": "content", "content": "Paris"}},
    "verbosity": {"verbosity": "low"},
    "web_search_options": {"web_search_options": {}},
    "service_tier": {"service_tier": "flex"},
    "a field added later": {"some_future_option": 1},
    "user message": {
        "messages": [{"role": "user", "content": "Capital of Spain? One word."}]
    },
    "system prompt": {
        "messages": [
            {"role": "system", "content": "Answer in German."},
            {"role": "user", "content": "Capital of France? One word."},
        ]
    },
}

# None of these changes the answer, so none may change the key.
NO_ANSWER_CHANGES = {
    "user": {"user": "someone-else"},
    "metadata": {"metadata": {"team": "blue"}},
    "stream": {"stream": True},
    "stream_options": {"stream": True, "stream_options": {"include_usage": True}},
    "store": {"store": True},
    "safety_identifier": {"safety_identifier": "hash-1"},
    "prompt_cache_key": {"prompt_cache_key": "k1"},
    "model alias": {"model": "another-alias"},
    "integral float": {"temperature": 0.0, "max_tokens": 16},
    "stop as a string": {"stop": "\n"},
}


def request_of(**changes) -> ChatRequest:
    body = copy.deepcopy(BASE)
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return validate_chat_body(body)


def test_ignored_fields_are_exactly_the_documented_ones():
    assert IGNORED_FIELDS == {
        "model",
        "user",
        "metadata",
        "stream",
        "stream_options",
        "store",
        "safety_identifier",
        "prompt_cache_key",
    }


@pytest.mark.parametrize("name", ANSWER_CHANGES)
def test_answer_changing_field_changes_key(name):
    base = exact_key(CONTEXT, request_of())

    changed = exact_key(CONTEXT, request_of(**ANSWER_CHANGES[name]))

    assert changed != base


@pytest.mark.parametrize("name", NO_ANSWER_CHANGES)
def test_irrelevant_field_keeps_key(name):
    base = exact_key(
        CONTEXT, request_of(stop=["\n"]) if "stop" in name else request_of()
    )

    same = exact_key(CONTEXT, request_of(**NO_ANSWER_CHANGES[name]))

    assert same == base


def test_tool_choice_auto_and_none_differ():
    auto = exact_key(CONTEXT, request_of(tools=[TOOL], tool_choice="auto"))
    none = exact_key(CONTEXT, request_of(tools=[TOOL], tool_choice="none"))

    assert auto != none


def test_field_order_does_not_matter():
    reordered = validate_chat_body(dict(reversed(list(copy.deepcopy(BASE).items()))))

    assert exact_key(CONTEXT, reordered) == exact_key(CONTEXT, request_of())


@pytest.mark.parametrize(
    "change",
    [
        {"scope": "org:9/project:2"},
        {"scope": "org:1/project:3"},
        {"generation": 1},
        {"model": "gpt-big"},
        {"upstream_model": "gpt-4.1"},
        {"connection_id": 4},
    ],
)
def test_context_changes_key(change):
    context = KeyContext(**{**CONTEXT.__dict__, **change})

    assert exact_key(context, request_of()) != exact_key(CONTEXT, request_of())


def test_anthropic_only_extensions_change_key():
    plain = request_of()
    thinking = request_of()
    thinking.extensions["anthropic"] = {"thinking": {"type": "enabled"}}

    assert exact_key(CONTEXT, plain) != exact_key(CONTEXT, thinking)


def test_semantic_scope_ignores_last_user_wording():
    first = semantic_query(CONTEXT, request_of())
    paraphrase = semantic_query(
        CONTEXT,
        request_of(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Which city is the capital of France?"},
            ]
        ),
    )

    assert first.scope == paraphrase.scope
    assert first.text == "Capital of France? One word."
    assert paraphrase.text == "Which city is the capital of France?"


@pytest.mark.parametrize(
    "change",
    [
        {
            "messages": [
                {"role": "system", "content": "Be verbose."},
                BASE["messages"][1],
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Earlier question"},
                {"role": "assistant", "content": "Earlier answer"},
                BASE["messages"][1],
            ]
        },
        {"max_tokens": 17},
        {"response_format": {"type": "json_object"}},
    ],
)
def test_semantic_scope_covers_system_history_and_settings(change):
    assert (
        semantic_query(CONTEXT, request_of(**change)).scope
        != semantic_query(CONTEXT, request_of()).scope
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tools": [TOOL]}, "tools"),
        ({"n": 3}, "several_choices"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": 1.5}, "temperature"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:,"}}
                        ],
                    }
                ]
            },
            "non_text_content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ]
            },
            "last_turn_not_user",
        ),
    ],
)
def test_semantic_exclusions(change, reason):
    assert semantic_exclusion(request_of(**change), SemanticRules()) == reason


def test_semantic_rules_can_admit_tools_and_higher_temperature():
    rules = SemanticRules(include_tools=True, max_temperature=2.0)

    assert semantic_exclusion(request_of(tools=[TOOL], temperature=1.5), rules) is None
    assert semantic_exclusion(request_of(), SemanticRules()) is None
