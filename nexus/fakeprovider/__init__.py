"""A fake LLM provider that speaks the OpenAI and Anthropic wire formats.

Tests, the quick start and benchmarks point vendor SDKs or the gateway at it. It
imports neither Django nor ``nexus.engine``.

In pytest, register the plugin in the top-level ``conftest.py``::

    pytest_plugins = ["nexus.fakeprovider.pytest_plugin"]

and use the ``fake_provider`` fixture::

    def test_retry_after_overload(fake_provider):
        fake_provider.enqueue("/v1/messages", {"status": 529, "error": "overloaded_error"})
        client = anthropic.Anthropic(base_url=fake_provider.anthropic_base, api_key="k")
        ...
        assert fake_provider.requests[-1].json["model"] == "claude-test"

Without a script, responses are deterministic: the text is ``"Echo: <last user text>"``
and tokens are whitespace-separated words (rules in ``nexus.fakeprovider.reply``).
Scripted responses replace them one request at a time (forms in
``nexus.fakeprovider.script``). Another process scripts the server through the
control API under ``/_fake/`` (``nexus.fakeprovider.app``) or with
``FakeProviderClient``.

Command line::

    python -m nexus.fakeprovider --host 127.0.0.1 --port 9100 --openai-key K
"""

from nexus.fakeprovider.app import FakeProviderApp
from nexus.fakeprovider.client import FakeProviderClient
from nexus.fakeprovider.recorder import RecordedRequest
from nexus.fakeprovider.script import ScriptError
from nexus.fakeprovider.server import FakeProvider

__all__ = [
    "FakeProvider",
    "FakeProviderApp",
    "FakeProviderClient",
    "RecordedRequest",
    "ScriptError",
]
