import asyncio
import logging
import os

import httpx
import pytest
import redis

from apps.cache.models import CachePolicy
from tests.support.factories import (
    make_connection,
    make_model,
    make_project,
    make_tenant,
)


class CacheSetup:
    """One org with two projects, three keys and two chat models on the fake provider."""

    def __init__(self, fake_provider, gateway) -> None:
        connection = make_connection("openai", fake_provider.openai_base)
        self.connection = connection
        self.chat = make_model(
            connection, "gpt-4o-mini", input_price="0.15", output_price="0.6"
        ).name
        self.big = make_model(
            connection, "gpt-4.1", input_price="2", output_price="8"
        ).name
        self.embed = make_model(
            connection, "text-embedding-3-small", kind="embeddings"
        ).name
        self.tenant = make_tenant(project=None)
        self.org = self.tenant.org
        self.project = make_project(self.org)
        self.other_project = make_project(self.org)
        self.key_a = make_tenant(org=self.org, project=self.project)
        self.key_b = make_tenant(org=self.org, project=self.project)
        self.key_c = make_tenant(org=self.org, project=self.other_project)
        self.gateway = gateway
        self.fake = fake_provider

    def policy(self, **fields) -> CachePolicy:
        fields.setdefault("organization", self.org)
        policy = CachePolicy.objects.create(**fields)
        self.gateway.refresh()
        return policy

    def upstream_calls(self, suffix: str = "/chat/completions") -> int:
        return sum(1 for r in self.fake.requests if r.path.endswith(suffix))

    def post(self, body: dict, key: str | None = None, headers=None, path=None):
        sent = {"authorization": f"Bearer {key or self.key_a.key}"}
        sent.update(headers or {})
        return httpx.post(
            f"{self.gateway.url}{path or '/v1/chat/completions'}",
            json=body,
            headers=sent,
            timeout=30,
        )

    def drain(self) -> None:
        """Wait for the cache stage's background stores."""
        stage = next(s for s in self.gateway.runtime.stages if s.name == "cache")
        self.gateway.run(stage.layer.drain())

    @property
    def layer(self):
        return next(s for s in self.gateway.runtime.stages if s.name == "cache").layer


@pytest.fixture
def cache(fake_provider, gateway, db_rows) -> CacheSetup:
    setup = CacheSetup(fake_provider, gateway)
    gateway.refresh()
    return setup


def chat_body(text: str, model: str, **fields) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    body.update(fields)
    return body


async def until_upstream_called(fake, count: int = 1, limit: float = 30.0) -> None:
    """Wait until the fake provider has received `count` chat requests."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while sum(1 for r in fake.requests if r.path.endswith("/chat/completions")) < count:
        if loop.time() > deadline:
            raise AssertionError(f"the provider did not get {count} request(s)")
        await asyncio.sleep(0.01)


async def post_many(url: str, key: str, bodies: list[dict], stream: bool = False):
    """Send every body at once on separate connections; return (status, text) pairs."""
    limits = httpx.Limits(max_connections=len(bodies) + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(body):
            response = await client.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {key}"},
            )
            return response.status_code, response.text, dict(response.headers)

        return await asyncio.gather(*(one(body) for body in bodies))


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory):
    """A PostgreSQL with pgvector: the bundled server of the pgserver package."""
    pgserver = pytest.importorskip(
        "pgserver", reason="pgserver (a PostgreSQL with pgvector) is not installed"
    )
    server = pgserver.get_server(
        str(tmp_path_factory.mktemp("pgvector")), cleanup_mode="stop"
    )
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    yield server.get_uri()
    server.cleanup()
    # pgserver logs again from its exit handler, after pytest closed the streams.
    logging.getLogger("pgserver").disabled = True


@pytest.fixture(scope="session")
def redis_search_url():
    """A Redis or Valkey server with vector search, when one is reachable."""
    for url in (
        os.environ.get("NEXUS_TEST_REDIS_SEARCH_URL"),
        os.environ.get("REDIS_URL"),
    ):
        if url and supports_vector_search(url):
            return url
    pytest.skip(
        "no Redis or Valkey server with vector search (FT.CREATE ... VECTOR) found; "
        "set NEXUS_TEST_REDIS_SEARCH_URL to run these tests"
    )


def supports_vector_search(url: str) -> bool:
    """Return whether the server at url accepts an FT.CREATE with a VECTOR field."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    name = "nexus:semantic-probe"
    try:
        client.execute_command(
            "FT.CREATE", name, "ON", "HASH", "PREFIX", "1", name + ":",
            "SCHEMA", "v", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "2",
            "DISTANCE_METRIC", "COSINE",
        )  # fmt: skip
        client.execute_command("FT.DROPINDEX", name)
        return True
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def make_index(**fields):
    from apps.cache.models import SemanticIndex

    fields.setdefault("name", "t_" + os.urandom(6).hex())
    return SemanticIndex.objects.create(**fields)
