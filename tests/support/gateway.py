"""A real gateway server (uvicorn on loopback) running in a background thread."""

import asyncio
import threading
import time

import uvicorn

from apps.gateway.asgi import GatewayApp
from apps.gateway.runtime import GatewayRuntime
from nexus.asgi import build_application


class GatewayServer:
    """Start nexus.asgi under uvicorn on an ephemeral port; stop it on close()."""

    def __init__(self) -> None:
        self.runtime = GatewayRuntime()
        app = build_application(GatewayApp(self.runtime))
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self._run, name="test-gateway", daemon=True
        )
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> "GatewayServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test gateway did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    def run(self, coroutine, timeout: float = 30):
        """Run a coroutine on the server's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def refresh(self) -> None:
        """Reload the config snapshot now instead of waiting for the change message."""
        self.run(self.runtime.reload())

    def flush_audit(self) -> None:
        """Wait until every request in flight is audited and every event is stored."""
        deadline = time.monotonic() + 15
        while self.runtime.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.runtime.audit.flush(15), "audit writer did not drain"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
