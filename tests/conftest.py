import os

import pytest

from tests.support.gateway import GatewayServer

pytest_plugins = ["nexus.fakeprovider.pytest_plugin"]

SHARED = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def pytest_collection_modifyitems(config, items) -> None:
    if SHARED:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL)"
    )
    for item in items:
        if "shared_servers" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment, django_db_blocker, django_db_modify_db_settings
):
    """Create the test database for every session, not only when a test is marked.

    Gateway tests write committed rows outside a test transaction so the server
    thread can read them, so they carry no django_db mark.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        _end_other_sessions()
        teardown_databases(config, verbosity=0)


def _end_other_sessions() -> None:
    """Close connections that server threads left open so the test database can be dropped."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def gateway(django_db_setup, django_db_blocker):
    """A gateway server for the whole session; tests add rows and call refresh()."""
    with django_db_blocker.unblock():
        server = GatewayServer().start()
        yield server
        server.close()


@pytest.fixture
def db_rows(django_db_blocker):
    """Allow a test to write committed rows that the gateway thread can read."""
    with django_db_blocker.unblock():
        yield
