"""The fake provider's aiohttp application: vendor routes, control API, shared state.

Every vendor request is recorded and authenticated by its vendor. The oldest matching
scripted response is then sent, or the vendor's default response when none is queued. Paths that no vendor serves get a 404 unless a scripted response matches
them, so a test can script a vendor that has no module yet.

Control API, for processes that cannot call the Python API:

- ``POST /_fake/enqueue`` with ``{"path": suffix-or-null, "response": {...}}`` or a
  list of them; string chunks only, since JSON has no bytes.
- ``GET /_fake/requests`` returns ``{"requests": [...]}`` (see
  ``RecordedRequest.to_dict``).
- ``POST /_fake/reset`` clears requests, scripts and key changes and closes hung
  connections.
- ``GET /_fake/health`` returns ``{"status": "ok", "pending": n}``.
"""

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping

import orjson
from aiohttp import web

from nexus.fakeprovider.recorder import Recorder, parse_json
from nexus.fakeprovider.script import (
    ScriptError,
    ScriptQueue,
    parse_script,
    play_script,
)
from nexus.fakeprovider.vendors import VENDOR_CLASSES
from nexus.fakeprovider.vendors.base import Call, Handler, Vendor

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024 * 1024
# Hung and slow handlers are cancelled this many seconds after shutdown starts.
SHUTDOWN_TIMEOUT = 0.5


class FakeProviderApp:
    """Vendor routes and the state they share: recorder, script queue, expected keys.

    ``keys`` maps a vendor name to the API key it accepts; a vendor without an entry
    accepts any non-empty key. ``max_recorded`` bounds the request log (None keeps
    all requests, 0 records none).
    """

    def __init__(
        self,
        keys: Mapping[str, str | None] | None = None,
        max_recorded: int | None = None,
        vendor_classes: tuple[type[Vendor], ...] = VENDOR_CLASSES,
    ) -> None:
        self.vendors = {
            vendor_class.name: vendor_class() for vendor_class in vendor_classes
        }
        self.startup_keys = dict(keys or {})
        for name in self.startup_keys:
            self._check_vendor(name)
        self.keys = dict(self.startup_keys)
        self.recorder = Recorder(max_recorded)
        self.scripts = ScriptQueue()
        # Paths that no vendor serves: no auth, generic error body.
        self._unrouted = Vendor()
        self._hung: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def build(self) -> web.Application:
        """Return the aiohttp application with every vendor's routes mounted."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.on_startup.append(self._remember_loop)
        app.on_shutdown.append(self._release_on_shutdown)
        for vendor in self.vendors.values():
            for endpoint in vendor.endpoints():
                handler = self._vendor_route(vendor, endpoint.handler)
                app.router.add_route(endpoint.method, endpoint.path, handler)

        app.router.add_post("/_fake/enqueue", self._enqueue_view)
        app.router.add_get("/_fake/requests", self._requests_view)
        app.router.add_post("/_fake/reset", self._reset_view)
        app.router.add_get("/_fake/health", self._health_view)
        unrouted = self._vendor_route(self._unrouted, self._not_found)
        app.router.add_route("*", "/{tail:.*}", unrouted)
        return app

    def set_key(self, vendor: str, key: str | None) -> None:
        """Set the API key a vendor accepts until the next reset; None accepts any."""
        self._check_vendor(vendor)
        self.keys[vendor] = key

    def reset(self) -> None:
        """Clear requests, scripts and key changes, and close hung connections.

        Safe to call from any thread.
        """
        self.recorder.clear()
        self.scripts.clear()
        self.keys = dict(self.startup_keys)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release_hung)

    def _check_vendor(self, name: str) -> None:
        if name not in self.vendors:
            known = ", ".join(sorted(self.vendors))
            raise ValueError(f"Unknown vendor {name!r}; expected one of {known}.")

    def _vendor_route(
        self, vendor: Vendor, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            parsed = parse_json(body)
            self.recorder.record(request, body, parsed)

            rejection = vendor.authenticate(request.headers, self.keys.get(vendor.name))
            if rejection is not None:
                return rejection

            call = Call(request, parsed)
            script = self.scripts.pop(request.path)
            if script is None:
                return await handler(call)
            return await play_script(
                script, call, vendor, handler, self._wait_for_release
            )

        return serve

    async def _not_found(self, call: Call) -> web.StreamResponse:
        request = call.request
        message = f"No fake route for {request.method} {request.path}."
        return self._unrouted.error_response(404, "not_found_error", message)

    async def _wait_for_release(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hung.add(future)
        try:
            await future
        finally:
            self._hung.discard(future)

    def _release_hung(self) -> None:
        for future in list(self._hung):
            if not future.done():
                future.set_result(None)

    async def _remember_loop(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()

    async def _release_on_shutdown(self, app: web.Application) -> None:
        self._release_hung()

    async def _enqueue_view(self, request: web.Request) -> web.Response:
        entries = parse_json(await request.read())
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            return _control_error("The body must be a JSON object or a list of them.")
        try:
            scripts = [
                (entry.get("path"), parse_script(entry["response"]))
                for entry in entries
            ]
        except (ScriptError, KeyError, AttributeError) as exc:
            return _control_error(f"Invalid scripted response: {exc}")
        for path, script in scripts:
            self.scripts.add(path, script)
        return web.json_response({"pending": self.scripts.pending()}, dumps=_dumps)

    async def _requests_view(self, request: web.Request) -> web.Response:
        requests = [recorded.to_dict() for recorded in self.recorder.list()]
        return web.json_response({"requests": requests}, dumps=_dumps)

    async def _reset_view(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"pending": 0}, dumps=_dumps)

    async def _health_view(self, request: web.Request) -> web.Response:
        health = {"status": "ok", "pending": self.scripts.pending()}
        return web.json_response(health, dumps=_dumps)


async def start_site(fake: FakeProviderApp, sock: socket.socket) -> web.AppRunner:
    """Serve the application on a bound, listening socket; return the runner."""
    runner = web.AppRunner(
        fake.build(),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def bind_socket(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket; port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _control_error(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400, dumps=_dumps)


def _dumps(data: object) -> str:
    return orjson.dumps(data).decode()
