"""Local HTTP peers for tests: a decision service and a recording receiver.

Both serve on 127.0.0.1 from a background thread; responses are scripted per test.
"""

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web


class HttpPeer:
    """An aiohttp server on loopback whose answers come from handle()."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond: Callable[[dict[str, Any]], Any] = lambda request: {
            "decision": "approve"
        }
        self.status = 200
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = {
            "path": request.path,
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "body": body,
        }
        try:
            record["json"] = orjson.loads(body)
        except orjson.JSONDecodeError:
            record["json"] = None
        self.requests.append(record)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.respond(record)
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.Response(
            status=self.status,
            body=orjson.dumps(answer),
            headers={"content-type": "application/json", **self.headers},
        )

    def start(self) -> "HttpPeer":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(
                10
            )
            self.runner = None

    def restart(self) -> None:
        """Listen again on the same port after stop()."""
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
