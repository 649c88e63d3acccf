import json

TOOL = {
    "type": "function",
    "name": "search",
    "parameters": {
        "type": "object",
        "properties": {"terms": {"type": "array"}},
        "required": ["terms"],
    },
}


def test_responses_text_output(openai_client):
    response = openai_client.responses.create(
        model="gpt-4o", input="hello responses", instructions="be kind"
    )

    assert response.output_text == "Echo: hello responses"
    assert response.status == "completed"
    assert response.usage.input_tokens == 4
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == 7
    assert response.usage.input_tokens_details.cached_tokens == 0


def test_responses_message_list_input(openai_client):
    response = openai_client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": "old"},
            {"role": "assistant", "content": "older answer"},
            {"role": "user", "content": [{"type": "input_text", "text": "newest"}]},
        ],
    )

    assert response.output_text == "Echo: newest"


def test_responses_function_call(openai_client):
    response = openai_client.responses.create(
        model="gpt-4o", input="call search", tools=[TOOL]
    )

    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "search"
    assert json.loads(calls[0].arguments) == {"terms": []}
    assert calls[0].call_id.startswith("call_")


def test_responses_reasoning_counts_tokens(openai_client):
    response = openai_client.responses.create(
        model="o3-mini", input="ponder", reasoning={"effort": "low"}
    )

    assert response.output[0].type == "reasoning"
    assert response.usage.output_tokens_details.reasoning_tokens == 3


def test_responses_stream_event_order(openai_client):
    stream = openai_client.responses.create(
        model="gpt-4o", input="stream this", stream=True
    )

    events = list(stream)
    types = [event.type for event in events]
    deltas = [
        event.delta for event in events if event.type == "response.output_text.delta"
    ]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "".join(deltas) == "Echo: stream this"
    assert len(deltas) == 3
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-1].response.usage.output_tokens == 3


def test_responses_stream_function_call_arguments(openai_client):
    stream = openai_client.responses.create(
        model="gpt-4o", input="call search", tools=[TOOL], stream=True
    )

    events = list(stream)
    deltas = [
        event.delta
        for event in events
        if event.type == "response.function_call_arguments.delta"
    ]
    done = [
        event
        for event in events
        if event.type == "response.function_call_arguments.done"
    ]
    assert "".join(deltas) == '{"terms":[]}'
    assert done[0].arguments == '{"terms":[]}'
    assert events[-1].response.output[0].type == "function_call"


def test_responses_max_output_tokens_is_incomplete(openai_client):
    response = openai_client.responses.create(
        model="gpt-4o", input="one two three four", max_output_tokens=2
    )

    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Echo: one"
