import pytest

from nexus.engine.canonical import ChatResult, Usage
from nexus.engine.hooks.base import HookBlockedError, HookContext
from nexus.engine.hooks.lists import RulesHook
from nexus.engine.hooks.pii import PiiHook
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline
from nexus.engine.hooks.stream import ResponseHookFilter
from tests.hooks.support import SERVICES


def response_filter(block_word=None, window=32):
    hooks = [
        BoundHook(
            HookSpec(1, "pii", "pii", "response"),
            PiiHook({"stream_window": window}, SERVICES),
        )
    ]
    if block_word:
        rules = RulesHook({"rules": [{"id": "w1", "keyword": block_word}]}, SERVICES)
        hooks.append(BoundHook(HookSpec(2, "words", "rules", "response"), rules))
    return ResponseHookFilter(Pipeline(hooks), HookContext("response"))


def chunk(delta, finish=None):
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def run(stream_filter, chunks):
    out = []
    for item in chunks:
        out.extend(stream_filter.filter_chunk(item))
    out.extend(stream_filter.flush())
    return out


def text_of(chunks, field="content"):
    return "".join(
        c["choices"][0]["delta"].get(field) or "" for c in chunks if c.get("choices")
    )


def test_email_split_across_chunks_is_redacted():
    pieces = [
        "Contact jane.pla",
        "ceholder@exa",
        "mple.test for ",
        "details about the visit. " * 3,
    ]
    chunks = (
        [chunk({"role": "assistant", "content": ""})]
        + [chunk({"content": p}) for p in pieces]
        + [chunk({}, "stop")]
    )

    out = run(response_filter(), chunks)

    text = text_of(out)
    assert "jane" not in text
    assert "exa" not in text.replace("[EMAIL]", "")
    assert text.startswith("Contact [EMAIL] for details")
    assert out[-1]["choices"][0]["finish_reason"] == "stop"


def test_text_order_is_kept_and_nothing_lost():
    words = [f"word{i} " for i in range(100)]
    chunks = [chunk({"content": word}) for word in words] + [chunk({}, "stop")]

    out = run(response_filter(), chunks)

    assert text_of(out) == "".join(words)


def test_tool_call_arguments_split_across_chunks_are_redacted():
    arguments = '{"email": "jane.placeholder@example.test", "note": "' + "x" * 40 + '"}'
    start = chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "send", "arguments": ""},
                }
            ]
        }
    )
    pieces = [arguments[i : i + 7] for i in range(0, len(arguments), 7)]
    chunks = (
        [start]
        + [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
            for p in pieces
        ]
        + [chunk({}, "tool_calls")]
    )

    out = run(response_filter(), chunks)

    sent = "".join(
        call["function"].get("arguments") or ""
        for c in out
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    )
    assert sent == '{"email": "[EMAIL]", "note": "' + "x" * 40 + '"}'
    assert out[0]["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1"


def test_block_mid_stream_raises():
    stream_filter = response_filter(block_word="forbidden")
    early = [chunk({"content": "a harmless start of the answer that is long enough. "})]
    stream_filter.filter_chunk(early[0])

    with pytest.raises(HookBlockedError):
        for piece in ["and then the forb", "idden word appears ", "x" * 80]:
            stream_filter.filter_chunk(chunk({"content": piece}))
        stream_filter.flush()

    assert stream_filter.decision == "block"


def test_usage_chunk_flushes_held_text_first():
    stream_filter = response_filter()
    stream_filter.filter_chunk(chunk({"content": "short"}))

    out = stream_filter.filter_chunk(
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 1}}
    )

    assert text_of(out[:-1]) == "short"
    assert out[-1]["usage"] == {"prompt_tokens": 1}


def test_complete_answer_is_redacted():
    result = ChatResult(
        body={
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "ssn 078-05-1120",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {
                                    "name": "f",
                                    "arguments": '{"to": "a@b.example"}',
                                },
                            }
                        ],
                    },
                }
            ]
        },
        usage=Usage(),
    )

    response_filter().filter_result(result)

    message = result.body["choices"][0]["message"]
    assert message["content"] == "ssn [SSN]"
    assert message["tool_calls"][0]["function"]["arguments"] == '{"to": "[EMAIL]"}'
