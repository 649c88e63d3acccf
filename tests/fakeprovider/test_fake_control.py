import ast
import os
import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import openai
import pytest

from nexus.fakeprovider import FakeProviderClient

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nexus" / "fakeprovider"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def control(fake_provider):
    return FakeProviderClient(fake_provider.url)


def test_control_enqueue_scripts_next_response(control, openai_client):
    control.enqueue("/v1/chat/completions", {"reply": {"text": "from control"}})

    completion = openai_client.chat.completions.create(**CHAT)

    assert completion.choices[0].message.content == "from control"
    assert control.pending == 0


def test_control_requests_round_trip(control, openai_client):
    openai_client.chat.completions.create(**CHAT)

    recorded = control.requests

    assert len(recorded) == 1
    assert recorded[0].json == CHAT
    assert recorded[0].headers["authorization"] == "Bearer sk-test"
    assert recorded[0].body.startswith(b"{")


def test_control_reset(control, fake_provider, openai_client):
    control.enqueue(None, {"json": {}})
    openai_client.models.list()

    control.reset()

    assert fake_provider.requests == []
    assert fake_provider.pending == 0


def test_control_rejects_malformed_script(control):
    with pytest.raises(urllib.error.HTTPError) as caught:
        control.enqueue(None, {"status": "teapot", "json": {}})

    assert caught.value.code == 400
    assert b"status must be" in caught.value.read()


def test_control_requests_are_not_recorded(control, fake_provider):
    control.reset()
    control.enqueue(None, {"json": {}})

    assert control.requests == []
    assert fake_provider.pending == 1


def test_command_line_server_checks_keys(tmp_path):
    command = [
        sys.executable,
        "-m",
        "nexus.fakeprovider",
        "--port",
        "0",
        "--openai-key",
        "sk-cli",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        line = process.stderr.readline()
        port = re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1)
        base = f"http://127.0.0.1:{port}/v1"
        good = openai.OpenAI(base_url=base, api_key="sk-cli", max_retries=0)
        bad = openai.OpenAI(base_url=base, api_key="sk-other", max_retries=0)

        completion = good.chat.completions.create(**CHAT)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(**CHAT)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert completion.choices[0].message.content == "Echo: hi"


def test_package_imports_no_django_or_engine():
    allowed_roots = {"aiohttp", "orjson", "pytest", "uvloop", "nexus"}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root in sys.stdlib_module_names or root in allowed_roots, (
                    path,
                    name,
                )
                if root == "nexus":
                    assert name.startswith("nexus.fakeprovider"), (path, name)
