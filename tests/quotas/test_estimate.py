"""Prompt and output estimates use a real tokenizer and the caller's output cap."""

import pytest

from nexus.engine.canonical import validate_chat_body, validate_embeddings_body
from nexus.engine.quotas import estimate


@pytest.mark.parametrize(
    ("model", "encoding", "own"),
    [
        ("gpt-4o-mini", "o200k_base", True),
        ("openai/gpt-4.1", "o200k_base", True),
        ("gpt-4-turbo", "cl100k_base", True),
        ("text-embedding-3-small", "cl100k_base", True),
        ("claude-sonnet-4-5", "o200k_base", False),
    ],
)
def test_encoding_follows_model_family(model, encoding, own):
    assert estimate.encoding_name(model) == (encoding, own)


async def test_text_is_counted_in_bpe_tokens():
    count = await estimate.count_texts("gpt-4o-mini", ["Hello there, how are you?"])

    assert count == estimate.Count(7, True)


async def test_foreign_model_count_carries_margin():
    own = await estimate.count_texts("gpt-4o-mini", ["Hello there, how are you?"])
    foreign = await estimate.count_texts(
        "claude-sonnet-4-5", ["Hello there, how are you?"]
    )

    assert foreign.tokens == 9
    assert foreign.tokens > own.tokens
    assert not foreign.exact


async def test_long_text_counts_the_same_in_a_thread():
    text = "word " * 20_000

    count = await estimate.count_texts("gpt-4o-mini", [text])

    assert count.tokens == estimate._load("o200k_base")(text)
    assert len(text) > estimate.THREAD_THRESHOLD_CHARS


async def test_prompt_counts_messages_tools_and_images():
    plain = validate_chat_body(
        {"model": "m", "messages": [{"role": "user", "content": "Hello there"}]}
    )
    rich = validate_chat_body(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Hello there"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                },
            ],
            "tools": [{"type": "function", "function": {"name": "lookup"}}],
        }
    )

    small = await estimate.prompt_tokens("gpt-4o-mini", plain)
    large = await estimate.prompt_tokens("gpt-4o-mini", rich)

    assert small.tokens == 2 + estimate.MESSAGE_OVERHEAD + estimate.REPLY_OVERHEAD
    assert large.tokens > small.tokens + estimate.MEDIA_PART_TOKENS


async def test_embeddings_count_strings_and_token_ids():
    request = validate_embeddings_body({"model": "e", "input": [[1, 2, 3], [4, 5]]})

    count = await estimate.prompt_tokens("text-embedding-3-small", request)

    assert count.tokens == 5


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"max_tokens": 50}, (50, True)),
        ({"max_completion_tokens": 40, "max_tokens": 50}, (40, True)),
        ({"max_tokens": 10, "n": 3}, (30, True)),
        ({}, (256, False)),
        ({"n": 2}, (512, False)),
    ],
)
def test_output_allowance_uses_caller_cap(body, expected):
    request = validate_chat_body(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    )

    assert estimate.output_allowance(request, 256) == expected


def test_produced_text_joins_content_reasoning_and_tool_calls():
    chunks = [
        {"choices": [{"delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}}]},
        {"choices": [{"delta": {"reasoning_content": " think"}}]},
        {
            "choices": [
                {
                    "delta": {
                        "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]
                    }
                }
            ]
        },
        {"choices": [], "usage": {"prompt_tokens": 1}},
    ]

    assert estimate.produced_text(chunks) == "Hello thinkf{}"
