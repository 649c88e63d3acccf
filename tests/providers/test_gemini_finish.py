"""Gemini finish reasons and safety blocks, through the gateway with the openai SDK."""

import json
from types import SimpleNamespace

import anthropic
import httpx
import openai
import pytest

from apps.audit.models import AuditEvent
from tests.support.factories import make_connection, make_model, make_tenant

RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {
        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
        "probability": "HIGH",
        "blocked": True,
    },
]
CANDIDATE_BLOCKED = {
    "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": RATINGS}],
    "usageMetadata": {"promptTokenCount": 42, "totalTokenCount": 42},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "fake-resp-0019a",
}
PROMPT_BLOCKED = {
    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": RATINGS},
    "usageMetadata": {"promptTokenCount": 42, "totalTokenCount": 42},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "fake-resp-0019b",
}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
    },
}


@pytest.fixture
def gemini(fake_provider, gateway, db_rows):
    connection = make_connection("gemini", fake_provider.url, "gemini-key")
    setup = SimpleNamespace(
        model=make_model(connection, "gemini-2.5-flash").name,
        key=make_tenant().key,
        gateway=gateway,
    )
    gateway.refresh()
    return setup


@pytest.fixture
def client(gemini):
    return openai.OpenAI(
        base_url=gemini.gateway.openai_base, api_key=gemini.key, max_retries=0
    )


def candidate(finish_reason, parts):
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 5,
            "candidatesTokenCount": 16,
            "totalTokenCount": 21,
        },
    }


TEXT = [{"text": "Rivers have shaped"}]
CALL = [{"functionCall": {"name": "lookup", "args": {"word": "river"}}}]
FINISH_CASES = [
    ("STOP", TEXT, "stop"),
    ("STOP", CALL, "tool_calls"),
    ("MAX_TOKENS", TEXT, "length"),
    ("SAFETY", [], "content_filter"),
    ("RECITATION", TEXT, "content_filter"),
    ("BLOCKLIST", [], "content_filter"),
    ("PROHIBITED_CONTENT", [], "content_filter"),
    ("SPII", [], "content_filter"),
    ("MALFORMED_FUNCTION_CALL", TEXT, "length"),
    ("A_NEW_REASON", TEXT, "length"),
]


@pytest.mark.parametrize(("gemini_reason", "parts", "expected"), FINISH_CASES)
def test_finish_reason_is_normalised(
    client, gemini, fake_provider, gemini_reason, parts, expected
):
    fake_provider.enqueue(":generateContent", {"json": candidate(gemini_reason, parts)})

    completion = client.chat.completions.create(
        model=gemini.model,
        max_tokens=16,
        tools=[LOOKUP],
        messages=[{"role": "user", "content": "Write an essay."}],
    )

    assert completion.choices[0].finish_reason == expected


@pytest.mark.parametrize(("gemini_reason", "parts", "expected"), FINISH_CASES)
def test_streamed_finish_reason_is_normalised(
    client, gemini, fake_provider, gemini_reason, parts, expected
):
    fake_provider.enqueue(
        ":streamGenerateContent",
        {"sse": "data: " + json.dumps(candidate(gemini_reason, parts)) + "\r\n\r\n"},
    )

    chunks = list(
        client.chat.completions.create(
            model=gemini.model,
            max_tokens=16,
            tools=[LOOKUP],
            stream=True,
            messages=[{"role": "user", "content": "Write an essay."}],
        )
    )

    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][
        -1
    ] == expected


@pytest.mark.parametrize("gemini_reason", ["MALFORMED_FUNCTION_CALL", "A_NEW_REASON"])
def test_unmapped_reason_without_truncation_maps_to_stop(
    client, gemini, fake_provider, gemini_reason
):
    fake_provider.enqueue(":generateContent", {"json": candidate(gemini_reason, TEXT)})

    completion = client.chat.completions.create(
        model=gemini.model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("gemini_reason", "stop_reason"),
    [("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal")],
)
def test_messages_callers_get_anthropic_stop_reasons(
    gemini, fake_provider, gemini_reason, stop_reason
):
    fake_provider.enqueue(":generateContent", {"json": candidate(gemini_reason, TEXT)})
    client = anthropic.Anthropic(
        base_url=gemini.gateway.url, api_key=gemini.key, max_retries=0
    )

    message = client.messages.create(
        model=gemini.model,
        max_tokens=16,
        messages=[{"role": "user", "content": "Write an essay."}],
    )

    assert message.stop_reason == stop_reason


def test_blocked_candidate_is_a_normal_completion(client, gemini, fake_provider):
    fake_provider.enqueue(":generateContent", {"json": CANDIDATE_BLOCKED})

    response = client.chat.completions.with_raw_response.create(
        model=gemini.model, messages=[{"role": "user", "content": "something unsafe"}]
    )

    completion = response.parse()
    choice = completion.choices[0]
    assert response.status_code == 200
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None
    assert choice.model_extra["safety_block"] == {
        "source": "candidate",
        "reason": "SAFETY",
        "categories": ["HARM_CATEGORY_DANGEROUS_CONTENT"],
    }
    assert completion.usage.prompt_tokens == 42
    assert completion.usage.completion_tokens == 0
    assert completion.usage.total_tokens == 42


def test_blocked_prompt_is_a_content_filter_completion(client, gemini, fake_provider):
    fake_provider.enqueue(":generateContent", {"json": PROMPT_BLOCKED})

    completion = client.chat.completions.create(
        model=gemini.model, messages=[{"role": "user", "content": "something unsafe"}]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert not choice.message.content
    assert choice.model_extra["safety_block"]["source"] == "prompt"
    assert completion.usage.prompt_tokens == 42
    assert completion.usage.completion_tokens == 0


@pytest.mark.parametrize(
    "body", [CANDIDATE_BLOCKED, PROMPT_BLOCKED], ids=["candidate", "prompt"]
)
def test_blocked_stream_ends_with_content_filter_and_done(gemini, fake_provider, body):
    fake_provider.enqueue(
        ":streamGenerateContent", {"sse": "data: " + json.dumps(body) + "\r\n\r\n"}
    )

    response = httpx.post(
        gemini.gateway.openai_base + "/chat/completions",
        headers={"authorization": f"Bearer {gemini.key}"},
        json={
            "model": gemini.model,
            "stream": True,
            "messages": [{"role": "user", "content": "something unsafe"}],
        },
        timeout=10,
    )

    events = [
        line.removeprefix("data: ")
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    chunks = [json.loads(event) for event in events[:-1]]
    assert response.status_code == 200
    assert events[-1] == "[DONE]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_safety_block_audited_as_success(client, gemini, fake_provider):
    fake_provider.enqueue(":generateContent", {"json": CANDIDATE_BLOCKED})

    response = client.chat.completions.with_raw_response.create(
        model=gemini.model, messages=[{"role": "user", "content": "something unsafe"}]
    )
    gemini.gateway.flush_audit()

    event = AuditEvent.objects.get(request_id=response.headers["x-request-id"])
    assert (
        len(
            [
                request
                for request in fake_provider.requests
                if "/models/" in request.path
            ]
        )
        == 1
    )
    assert event.status_code == 200
    assert event.input_tokens == 42
    assert event.output_tokens == 0
