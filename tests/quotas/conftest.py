import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest
import redis
from django.conf import settings

from apps.audit.models import AuditEvent
from nexus.engine.quotas.stage import QuotaStage
from tests.support.factories import make_connection, make_model, make_tenant


class QuotaSetup:
    """A tenant with one priced chat model on the fake provider's OpenAI API."""

    def __init__(self, fake_provider, gateway, input_price="1", output_price="2"):
        self.connection = make_connection("openai", fake_provider.openai_base)
        self.model = make_model(
            self.connection,
            "gpt-4o-mini",
            input_price=input_price,
            output_price=output_price,
        )
        self.tenant = make_tenant()
        self.org = self.tenant.org
        self.key = self.tenant.key
        self.key_row = self.tenant.key_row
        self.gateway = gateway
        self.fake = fake_provider
        self.client = httpx.Client(timeout=30)

    def refresh(self) -> None:
        self.gateway.refresh()

    def chat(self, content="hello world", url=None, key=None, **body):
        payload = {
            "model": self.model.name,
            "messages": [{"role": "user", "content": content}],
            **body,
        }
        return self.client.post(
            f"{url or self.gateway.url}/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {key or self.key}"},
        )

    def audit_rows(self):
        self.gateway.flush_audit()
        return list(
            AuditEvent.objects.filter(key_id=self.key_row.pk).order_by("created_at")
        )


@pytest.fixture
def quota_setup(fake_provider, gateway, db_rows):
    setup = QuotaSetup(fake_provider, gateway)
    yield setup
    setup.client.close()


def quota_stage(server) -> QuotaStage:
    """Return the quota stage of a running gateway server."""
    return next(
        stage for stage in server.runtime.stages if isinstance(stage, QuotaStage)
    )


def counter_key(quota, now: float | None = None, **values) -> tuple[str, int]:
    """Return the key of a quota's counter for the given axis values, and its oldest bucket."""
    rule = quota.to_rule()
    slot = rule.window.slot(time.time() if now is None else now)
    key = rule.counter_key({name: str(value) for name, value in values.items()}, slot)
    return key, slot.oldest


def counter_value(server, quota, now: float | None = None, **values) -> int:
    """Return a counter's usage read from the server's own counter store."""
    key, oldest = counter_key(quota, now, **values)
    return server.run(quota_stage(server).backend.usage(key, oldest))


def redis_counter_value(quota, now: float | None = None, **values) -> int:
    """Return a counter's usage read straight from Redis."""
    key, oldest = counter_key(quota, now, **values)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        fields = client.hgetall(key)
    finally:
        client.close()
    return sum(
        int(amount) for bucket, amount in fields.items() if int(bucket) >= oldest
    )


class WebhookReceiver:
    """An HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = orjson.loads(self.rfile.read(length))
                with receiver.event:
                    receiver.bodies.append(body)
                    receiver.event.notify_all()
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self.event:
            self.event.wait_for(lambda: len(self.bodies) >= count, timeout)
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
