"""Gateway processes started with uvicorn against the test database."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """Return a DATABASE_URL for the test database pytest-django created."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


class GatewayProcess:
    """A separate `uvicorn nexus.asgi:application` process."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env["DATABASE_URL"] = test_database_url()
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "nexus.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gateway process did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def celery_worker(queue: str, broker: str) -> subprocess.Popen:
    """Start a Celery worker of the project that consumes `queue` on the test database.

    The node name comes from the queue, so workers that run at the same time (two
    xdist workers, or another test run on the same broker) never claim the same
    remote-control queue. Mingle and gossip are off because no test needs them.
    """
    env = dict(os.environ, DATABASE_URL=test_database_url(), CELERY_BROKER_URL=broker)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "nexus", "worker", "-Q", queue,
         "-n", f"{queue}@%h", "--pool", "solo", "--without-mingle",
         "--without-gossip", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
