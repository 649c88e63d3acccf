import anthropic
import httpx
import openai
import pytest


@pytest.fixture
def openai_client(fake_provider):
    client = openai.OpenAI(
        base_url=fake_provider.openai_base, api_key="sk-test", max_retries=0
    )
    yield client
    client.close()


@pytest.fixture
def anthropic_client(fake_provider):
    client = anthropic.Anthropic(
        base_url=fake_provider.anthropic_base, api_key="sk-ant-test", max_retries=0
    )
    yield client
    client.close()


@pytest.fixture
def http(fake_provider):
    with httpx.Client(base_url=fake_provider.url, timeout=5) as client:
        yield client
