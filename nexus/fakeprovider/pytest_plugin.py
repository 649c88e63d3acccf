"""Pytest fixtures for the fake provider.

Register the plugin in the top-level ``conftest.py``::

    pytest_plugins = ["nexus.fakeprovider.pytest_plugin"]

One server runs per test session on an ephemeral loopback port, and the
``fake_provider`` fixture resets it before and after each test.
"""

import logging
from collections.abc import Iterator

import pytest

from nexus.fakeprovider.server import FakeProvider

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """Serve one fake provider for the whole test session."""
    with FakeProvider() as server:
        yield server


@pytest.fixture
def fake_provider(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """Return the session's fake provider with no requests, scripts or key changes."""
    fake_provider_server.reset()
    yield fake_provider_server
    fake_provider_server.reset()
