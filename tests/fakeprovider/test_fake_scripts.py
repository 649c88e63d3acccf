import threading
import time

import anthropic
import httpx
import openai
import pytest

from nexus.fakeprovider import ScriptError
from nexus.fakeprovider.script import split_events

OPENAI_HEADERS = {"Authorization": "Bearer sk-test"}
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

OPENAI_SSE = (
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},'
    '"finish_reason":null}]}\n\n'
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)
ANTHROPIC_SSE = (
    "event: message_start\r\n"
    'data: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    '"role":"assistant","model":"m","content":[],"stop_reason":null,'
    '"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}\r\n\r\n'
    "event: content_block_start\r\n"
    'data: {"type":"content_block_start","index":0,'
    '"content_block":{"type":"text","text":""}}\r\n\r\n'
    "event: content_block_delta\r\n"
    'data: {"type":"content_block_delta","index":0,'
    '"delta":{"type":"text_delta","text":"Replayed"}}\r\n\r\n'
    "event: content_block_stop\r\n"
    'data: {"type":"content_block_stop","index":0}\r\n\r\n'
    "event: message_delta\r\n"
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    '"stop_sequence":null},"usage":{"output_tokens":5}}\r\n\r\n'
    "event: message_stop\r\n"
    'data: {"type":"message_stop"}\r\n\r\n'
)


def user(text):
    return [{"role": "user", "content": text}]


def test_scripted_json_status_reaches_sdk(openai_client, fake_provider):
    error = {"error": {"message": "Slow down.", "type": "requests", "code": None}}
    fake_provider.enqueue("/v1/chat/completions", {"status": 429, "json": error})

    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.chat.completions.create(**CHAT)

    assert caught.value.body["message"] == "Slow down."
    assert fake_provider.pending == 0


def test_scripts_are_consumed_fifo_by_path(http, fake_provider):
    fake_provider.enqueue("/v1/embeddings", {"json": {"which": "embeddings"}})
    fake_provider.enqueue(None, {"json": {"which": "any-1"}})
    fake_provider.enqueue(None, {"json": {"which": "any-2"}})

    chat = http.post("/v1/chat/completions", headers=OPENAI_HEADERS, json=CHAT)
    embeddings = http.post("/v1/embeddings", headers=OPENAI_HEADERS, json={})
    second = http.post("/v1/chat/completions", headers=OPENAI_HEADERS, json=CHAT)
    default = http.post("/v1/chat/completions", headers=OPENAI_HEADERS, json=CHAT)

    assert chat.json() == {"which": "any-1"}
    assert embeddings.json() == {"which": "embeddings"}
    assert second.json() == {"which": "any-2"}
    assert default.json()["object"] == "chat.completion"


def test_scripted_error_uses_vendor_error_shape(http, fake_provider):
    fake_provider.enqueue(
        "/v1/chat/completions", {"status": 400, "error": {"type": "x", "code": "bad"}}
    )

    response = http.post("/v1/chat/completions", headers=OPENAI_HEADERS, json=CHAT)

    error = response.json()["error"]
    assert response.status_code == 400
    assert error["type"] == "x"
    assert error["code"] == "bad"
    assert error["message"] == "Scripted error."


def test_raw_sse_replayed_per_event(fake_provider):
    fake_provider.enqueue(None, {"sse": ANTHROPIC_SSE, "chunk_delay": 0.1})
    raw = ANTHROPIC_SSE.encode()

    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST",
            fake_provider.url + "/v1/messages",
            headers=ANTHROPIC_HEADERS,
            json={},
        ) as response,
    ):
        received = list(response.iter_raw())

    assert b"".join(received) == raw
    assert received == split_events(raw)
    assert len(received) == 6
    assert response.headers["content-type"].startswith("text/event-stream")


def test_replayed_sse_parses_in_anthropic_sdk(anthropic_client, fake_provider):
    fake_provider.enqueue("/v1/messages", {"sse": ANTHROPIC_SSE})

    with anthropic_client.messages.stream(
        model="m", max_tokens=10, messages=user("ignored")
    ) as stream:
        final = stream.get_final_message()

    assert final.content[0].text == "Replayed"
    assert final.usage.input_tokens == 7
    assert final.usage.output_tokens == 5


def test_replayed_sse_parses_in_openai_sdk(openai_client, fake_provider):
    fake_provider.enqueue("/v1/chat/completions", {"sse": OPENAI_SSE})

    stream = openai_client.chat.completions.create(**CHAT, stream=True)

    assert "".join(chunk.choices[0].delta.content for chunk in stream) == "Hello"


def test_split_events_keeps_every_byte():
    raw = b"data: 1\n\ndata: 2\r\n\r\nevent: x\rdata: 3\r\rtrailing"

    chunks = split_events(raw)

    assert chunks == [
        b"data: 1\n\n",
        b"data: 2\r\n\r\n",
        b"event: x\rdata: 3\r\r",
        b"trailing",
    ]


def test_chunks_then_close_fails_mid_stream(openai_client, fake_provider):
    first = OPENAI_SSE.split("\n\n")[0] + "\n\n"
    fake_provider.enqueue(None, {"chunks": [first.encode()], "then": "close"})
    received = []

    with pytest.raises(openai.APIConnectionError):
        for chunk in openai_client.chat.completions.create(**CHAT, stream=True):
            received.append(chunk.choices[0].delta.content)

    assert received == ["Hel"]


def test_close_after_cuts_default_stream(anthropic_client, fake_provider):
    fake_provider.enqueue("/v1/messages", {"close_after": 4})
    pieces = []

    stream = anthropic_client.messages.stream(
        model="m", max_tokens=10, messages=user("one two three")
    )

    with pytest.raises(anthropic.APIConnectionError), stream as events:
        pieces.extend(events.text_stream)

    assert pieces == ["Echo: "]


def test_then_close_without_body_drops_connection(openai_client, fake_provider):
    fake_provider.enqueue(None, {"then": "close"})

    with pytest.raises(openai.APIConnectionError):
        openai_client.chat.completions.create(**CHAT)


def test_delay_triggers_client_timeout(fake_provider):
    client = openai.OpenAI(
        base_url=fake_provider.openai_base, api_key="k", max_retries=0, timeout=0.2
    )
    fake_provider.enqueue(None, {"delay": 1.0})

    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(**CHAT)


def test_delay_then_default_response(openai_client, fake_provider):
    fake_provider.enqueue(None, {"delay": 0.2})
    started = time.monotonic()

    completion = openai_client.chat.completions.create(**CHAT)

    assert time.monotonic() - started >= 0.2
    assert completion.choices[0].message.content == "Echo: hi"


def test_hang_blocks_until_reset(fake_provider):
    client = openai.OpenAI(
        base_url=fake_provider.openai_base, api_key="k", max_retries=0, timeout=0.3
    )
    fake_provider.enqueue(None, {"hang": True})

    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(**CHAT)
    fake_provider.reset()

    assert (
        client.chat.completions.create(**CHAT).choices[0].message.content == "Echo: hi"
    )


def test_hung_request_is_closed_by_reset(fake_provider):
    fake_provider.enqueue(None, {"hang": True})
    timer = threading.Timer(0.2, fake_provider.reset)

    with httpx.Client(timeout=5) as client:
        started = time.monotonic()
        timer.start()
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(
                fake_provider.openai_base + "/chat/completions", headers=OPENAI_HEADERS
            )

    assert time.monotonic() - started < 4


def test_raw_body_with_status(openai_client, fake_provider):
    fake_provider.enqueue(
        None,
        {
            "status": 502,
            "headers": {"Content-Type": "text/html"},
            "body": "<h1>Bad</h1>",
        },
    )

    with pytest.raises(openai.InternalServerError) as caught:
        openai_client.chat.completions.create(**CHAT)

    assert caught.value.status_code == 502
    assert caught.value.response.text == "<h1>Bad</h1>"


def test_reply_override_streams_scripted_text(openai_client, fake_provider):
    fake_provider.enqueue(None, {"reply": {"text": "My SSN is 078-05-1120"}})

    stream = openai_client.chat.completions.create(**CHAT, stream=True)

    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices]
    assert "".join(piece for piece in pieces if piece) == "My SSN is 078-05-1120"


def test_reply_override_tool_calls_and_usage(openai_client, fake_provider):
    reply = {
        "tool_calls": [{"name": "lookup", "arguments": {"query": "x"}, "id": "call_x"}],
        "usage": {"input_tokens": 50, "cached_tokens": 20, "reasoning_tokens": 2},
    }
    fake_provider.enqueue(None, {"reply": reply})

    completion = openai_client.chat.completions.create(**CHAT)

    call = completion.choices[0].message.tool_calls[0]
    assert call.id == "call_x"
    assert call.function.arguments == '{"query":"x"}'
    assert completion.usage.prompt_tokens == 50
    assert completion.usage.prompt_tokens_details.cached_tokens == 20
    assert completion.usage.completion_tokens_details.reasoning_tokens == 2


def test_headers_added_to_default_response(http, fake_provider):
    fake_provider.enqueue(None, {"headers": {"x-ratelimit-remaining-requests": "0"}})

    response = http.post("/v1/chat/completions", headers=OPENAI_HEADERS, json=CHAT)

    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"


def test_unknown_path_is_404_unless_scripted(http, fake_provider):
    missing = http.post("/acme/v2/models/m:generateText", json={})
    fake_provider.enqueue(":generateText", {"json": {"results": []}})
    scripted = http.post("/acme/v2/models/m:generateText", json={})

    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert scripted.json() == {"results": []}


def test_requests_are_recorded(http, fake_provider):
    http.post(
        "/v1/chat/completions?trace=1",
        headers={**OPENAI_HEADERS, "X-Custom": "yes"},
        json=CHAT,
    )

    recorded = fake_provider.requests[-1]
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.query == {"trace": "1"}
    assert recorded.headers["x-custom"] == "yes"
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.json == CHAT
    assert recorded.body.startswith(b"{")


def test_reset_clears_requests_and_scripts(http, fake_provider):
    fake_provider.enqueue(None, {"json": {}})
    http.get("/v1/models", headers=OPENAI_HEADERS)

    fake_provider.reset()

    assert fake_provider.requests == []
    assert fake_provider.pending == 0


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"jsn": {}}, "Unknown scripted response keys: jsn"),
        ({"json": {}, "sse": "data: 1\n\n"}, "one body form"),
        ({"status": 99, "json": {}}, "HTTP status code"),
        ({"status": 500}, "status needs"),
        ({"json": {}, "then": "close"}, "then='close'"),
        ({"delay": -1}, "delay must be"),
        ({"reply": {"txt": "x"}}, "Unknown reply keys: txt"),
        ({"reply": {"usage": {"prompt_tokens": 1}}}, "Unknown reply usage keys"),
        ({"error": {"message": "no type"}}, "error must be"),
        ({"chunks": [1]}, "Expected str or bytes"),
    ],
)
def test_malformed_script_is_rejected_at_enqueue(fake_provider, script, message):
    with pytest.raises(ScriptError, match=message):
        fake_provider.enqueue(None, script)
