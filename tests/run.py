"""Run the test suite against the shared servers this machine has.

PostgreSQL and Redis on loopback are used when they answer; otherwise the suite runs
on the embedded default (SQLite, local memory) and the tests that need a shared
server are skipped with a reason. NEXUS_TEST_EMBEDDED=1 forces the embedded default.
Arguments are passed to pytest.
"""

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def configure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
    os.environ.setdefault("NEXUS_DATA_DIR", str(ROOT / "var" / "test"))
    os.environ.setdefault("NEXUS_LOG_LEVEL", "WARNING")
    if os.environ.get("NEXUS_TEST_EMBEDDED") == "1":
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            os.environ.pop(name, None)
        return
    if reachable("127.0.0.1", 5432):
        os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    if reachable("127.0.0.1", 6379):
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    if reachable("127.0.0.1", 5672):
        os.environ.setdefault(
            "NEXUS_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"
        )


def main() -> int:
    configure()
    # Gives each pytest-xdist worker (-n N) its own Redis database and data directory.
    return pytest.main(["-p", "tests.worker_env", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
