import json

import pytest

LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["query", "limit"],
        },
    },
}
CLOCK_TOOL = {"type": "function", "function": {"name": "clock", "parameters": {}}}


def user(text):
    return [{"role": "user", "content": text}]


def test_chat_echoes_last_user_text(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
    )

    choice = completion.choices[0]
    assert choice.message.content == "Echo: second question"
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-4o"
    assert completion.object == "chat.completion"


def test_chat_usage_counts_words(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "be brief"}, *user("one two three")],
    )

    usage = completion.usage
    assert usage.prompt_tokens == 5
    assert usage.completion_tokens == 4
    assert usage.total_tokens == 9
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_stream_splits_text_into_chunks(openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=user("stream these words"), stream=True
    )

    chunks = list(stream)
    pieces = [chunk.choices[0].delta.content for chunk in chunks[1:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert pieces == ["Echo: ", "stream ", "these ", "words"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


def test_chat_stream_include_usage_adds_final_chunk(openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=user("count me"),
        stream=True,
        stream_options={"include_usage": True},
    )

    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 2
    assert chunks[-1].usage.completion_tokens == 3
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_chat_stream_ends_with_done_marker(openai_client, http):
    response = http.post(
        "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test"},
        json={"model": "gpt-4o", "messages": user("hi"), "stream": True},
    )

    events = [event for event in response.text.split("\n\n") if event]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


def test_chat_tool_call_fills_required_arguments(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=user("please call lookup"),
        tools=[LOOKUP_TOOL, CLOCK_TOOL],
    )

    choice = completion.choices[0]
    calls = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert len(calls) == 1
    assert calls[0].function.name == "lookup"
    assert json.loads(calls[0].function.arguments) == {"query": "test", "limit": 1}
    assert calls[0].id.startswith("call_")


def test_chat_parallel_calls_every_named_tool(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=user("call clock and call lookup in parallel"),
        tools=[LOOKUP_TOOL, CLOCK_TOOL],
    )

    calls = completion.choices[0].message.tool_calls
    assert [call.function.name for call in calls] == ["clock", "lookup"]
    assert json.loads(calls[0].function.arguments) == {}
    assert calls[0].id != calls[1].id


def test_chat_parallel_with_one_tool_calls_it_twice(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=user("call clock, parallel please"), tools=[CLOCK_TOOL]
    )

    calls = completion.choices[0].message.tool_calls
    assert [call.function.name for call in calls] == ["clock", "clock"]


def test_chat_unknown_tool_name_gets_text(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=user("call weather"), tools=[CLOCK_TOOL]
    )

    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == "Echo: call weather"


def test_chat_after_tool_result_is_text(openai_client):
    messages = [
        *user("call clock"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "clock", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
    ]

    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[CLOCK_TOOL]
    )

    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "Echo: call clock"
    assert completion.usage.prompt_tokens == 3


def test_chat_stream_tool_call_deltas(openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=user("call lookup twice in parallel"),
        tools=[LOOKUP_TOOL],
        stream=True,
    )

    deltas = [
        call
        for chunk in stream
        if chunk.choices and chunk.choices[0].delta.tool_calls
        for call in chunk.choices[0].delta.tool_calls
    ]
    for index in (0, 1):
        mine = [delta for delta in deltas if delta.index == index]
        arguments = "".join(delta.function.arguments for delta in mine)
        assert mine[0].id.startswith("call_")
        assert mine[0].function.name == "lookup"
        assert all(delta.id is None for delta in mine[1:])
        assert len(mine) > 2
        assert json.loads(arguments) == {"query": "test", "limit": 1}


def test_chat_stream_tool_call_finish_reason(openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=user("call clock"), tools=[CLOCK_TOOL], stream=True
    )

    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_max_tokens_truncates_with_length(openai_client):
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=user("a b c d e f"), max_completion_tokens=3
    )

    choice = completion.choices[0]
    assert choice.message.content == "Echo: a b"
    assert choice.finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_chat_reasoning_effort_counts_reasoning_tokens(openai_client):
    completion = openai_client.chat.completions.create(
        model="o3-mini", messages=user("think hard"), reasoning_effort="low"
    )

    details = completion.usage.completion_tokens_details
    assert details.reasoning_tokens == 4
    assert completion.usage.completion_tokens == 3 + 4
    assert completion.choices[0].message.content == "Echo: think hard"


def test_chat_missing_messages_is_rejected(http):
    response = http.post(
        "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test"},
        json={"model": "gpt-4o"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "messages" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_chat_non_object_body_is_rejected(http, body):
    response = http.post(
        "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
        content=body,
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] is None
