import pytest

from tests.hooks.conftest import Policy, Setup


@pytest.fixture
def setup(fake_provider, gateway, db_rows) -> Setup:
    return Setup(fake_provider, gateway)


@pytest.fixture
def policy(setup):
    policy = Policy(setup)
    yield policy
    policy.clear()


@pytest.fixture
def cleanup(setup):
    """Rows a test creates that change gateway behaviour; deleted when it ends."""
    rows: list = []
    yield rows
    for row in reversed(rows):
        row.delete()
    setup.gateway.refresh()
