"""The shared provider contract: gateway-level checks every provider type passes.

Each check sends a request with the official `openai` SDK to the running test gateway,
which calls the fake provider through the codec under test. The fake model replies
"Echo: " + the last user text, calls a tool when the text says "call <name>", and cuts
the reply at the max token limit (see nexus.fakeprovider.reply), so the expected
replies are the same for every vendor.

To run the contract for a provider type, subclass ProviderContract in your vendor's
test module (the class name must start with Test so pytest collects it) and set what
differs from the defaults:

    from tests.providers.contract import ProviderContract

    class TestAcmeContract(ProviderContract):
        provider_type = "acme"
        upstream_model = "acme-large"
        embeddings_model = "acme-embed"   # None skips the embeddings checks
        credential = "acme-key"
        options = {"region": "eu"}        # the connection's options JSON
        chat_path = ":generate"           # path suffix of chat calls, for scripting

        def base_url(self, fake_provider):
            return fake_provider.url       # where the fake speaks Acme's format

        def prepare(self, fake_provider):
            fake_provider.set_key("acme", "acme-key")

Set supports_tools = False for a provider without function calling, and
error_statuses to the upstream statuses your codec should pass on. Every check is an
ordinary test method, so `pytest tests/providers/test_acme.py -k Contract` runs only
the contract, and a subclass may override one check (for example with a skip mark
whose reason says what the vendor lacks).
"""

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import openai
import pytest

from tests.support.factories import make_connection, make_model, make_tenant

LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a city up.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

# OpenAI error types the fake vendors put in scripted error bodies, by status.
SCRIPTED_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


@dataclass
class ContractSetup:
    """What one contract check needs: a client, the public model names and the fake."""

    client: openai.OpenAI
    chat: str
    embed: str | None
    fake_provider: Any
    gateway: Any


class ProviderContract:
    """Gateway-level checks for one provider type; subclass it to run them."""

    provider_type: ClassVar[str] = ""
    upstream_model: ClassVar[str] = "contract-model"
    embeddings_model: ClassVar[str | None] = None
    credential: ClassVar[str] = "sk-contract"
    options: ClassVar[dict[str, Any]] = {}
    supports_tools: ClassVar[bool] = True
    chat_path: ClassVar[str | None] = None
    error_statuses: ClassVar[tuple[int, ...]] = (400, 401, 429, 500, 503)

    def base_url(self, fake_provider) -> str:
        """Return the connection's base URL on the fake provider."""
        return fake_provider.openai_base

    def prepare(self, fake_provider) -> None:
        """Set up the fake provider before each check (expected keys and the like)."""

    @pytest.fixture
    def contract(self, fake_provider, gateway, db_rows) -> ContractSetup:
        connection = make_connection(
            self.provider_type,
            self.base_url(fake_provider),
            self.credential,
            options=dict(self.options),
        )
        chat = make_model(connection, self.upstream_model).name
        embed = None
        if self.embeddings_model:
            embed = make_model(
                connection, self.embeddings_model, kind="embeddings"
            ).name
        tenant = make_tenant()
        self.prepare(fake_provider)
        gateway.refresh()
        client = openai.OpenAI(
            base_url=gateway.openai_base, api_key=tenant.key, max_retries=0
        )
        return ContractSetup(client, chat, embed, fake_provider, gateway)

    def test_chat_returns_text(self, contract):
        completion = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "hello contract"},
            ],
        )

        assert completion.choices[0].message.content == "Echo: hello contract"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model == contract.chat

    def test_chat_reports_usage(self, contract):
        completion = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[{"role": "user", "content": "count these four words"}],
        )

        usage = completion.usage
        assert usage.prompt_tokens > 0
        assert usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    def test_streamed_chat_arrives_in_chunks(self, contract):
        stream = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
        )
        chunks = list(stream)

        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Echo: one two three"
        assert len(chunks) > 2
        assert all(chunk.choices for chunk in chunks)
        assert all(chunk.usage is None for chunk in chunks)
        assert chunks[-1].choices[0].finish_reason == "stop"

    def test_streamed_usage_reaches_callers_who_ask(self, contract):
        stream = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)

        assert chunks[-1].choices == []
        assert chunks[-1].usage.prompt_tokens > 0
        assert chunks[-1].usage.completion_tokens > 0
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finishes[-1] == "stop"

    def test_token_limit_finishes_with_length(self, contract):
        completion = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[{"role": "user", "content": "a long reply please"}],
            max_tokens=2,
        )

        assert completion.choices[0].finish_reason == "length"
        assert completion.choices[0].message.content == "Echo: a"

    def test_tool_call_is_returned(self, contract):
        self._skip_without_tools()

        completion = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[{"role": "user", "content": "please call lookup"}],
            tools=[LOOKUP_TOOL],
        )

        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert len(choice.message.tool_calls) == 1
        call = choice.message.tool_calls[0]
        assert call.id
        assert call.function.name == "lookup"
        assert json.loads(call.function.arguments) == {"city": "test"}

    def test_streamed_tool_call_keeps_its_index(self, contract):
        self._skip_without_tools()

        stream = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[{"role": "user", "content": "please call lookup"}],
            tools=[LOOKUP_TOOL],
            stream=True,
        )
        deltas = []
        finish = None
        for chunk in stream:
            if not chunk.choices:
                continue
            deltas.extend(chunk.choices[0].delta.tool_calls or [])
            finish = chunk.choices[0].finish_reason or finish

        assert deltas
        assert {delta.index for delta in deltas} == {0}
        assert deltas[0].id
        assert deltas[0].function.name == "lookup"
        assert all(delta.id is None for delta in deltas[1:])
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        assert json.loads(arguments) == {"city": "test"}
        assert finish == "tool_calls"

    def test_tool_result_is_answered(self, contract):
        self._skip_without_tools()
        call = {
            "id": "call_contract_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"city": "Oslo"}'},
        }

        completion = contract.client.chat.completions.create(
            model=contract.chat,
            messages=[
                {"role": "user", "content": "weather please"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_contract_1", "content": "sunny"},
            ],
            tools=[LOOKUP_TOOL],
        )

        assert completion.choices[0].finish_reason == "stop"
        assert completion.choices[0].message.content == "Echo: weather please"
        assert not completion.choices[0].message.tool_calls

    def test_upstream_errors_keep_their_status(self, contract):
        for status in self.error_statuses:
            contract.fake_provider.enqueue(
                self.chat_path,
                {
                    "status": status,
                    "error": {
                        "type": SCRIPTED_ERROR_TYPES.get(status, "api_error"),
                        "message": f"Scripted failure {status}.",
                    },
                },
            )

            with pytest.raises(openai.APIStatusError) as caught:
                contract.client.chat.completions.create(
                    model=contract.chat,
                    messages=[{"role": "user", "content": "fail please"}],
                )

            assert caught.value.status_code == status, f"upstream status {status}"
            assert caught.value.body["message"], f"upstream status {status}"

    def test_embeddings_return_one_vector_per_input(self, contract):
        if contract.embed is None:
            pytest.skip(f"provider type {self.provider_type} has no embeddings model")

        floats = contract.client.embeddings.create(
            model=contract.embed, input=["alpha", "beta"], encoding_format="float"
        )
        default = contract.client.embeddings.create(
            model=contract.embed, input=["alpha", "beta"]
        )

        assert [item.index for item in floats.data] == [0, 1]
        assert len(floats.data[0].embedding) > 0
        assert floats.data[0].embedding != floats.data[1].embedding
        assert default.data[0].embedding == pytest.approx(
            floats.data[0].embedding, rel=1e-6
        )
        assert floats.usage.prompt_tokens > 0

    def _skip_without_tools(self) -> None:
        if not self.supports_tools:
            pytest.skip(f"provider type {self.provider_type} has no function calling")
