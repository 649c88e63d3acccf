"""Run the fake provider on a background thread and script it from Python."""

import asyncio
import logging
import threading
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from nexus.fakeprovider.app import FakeProviderApp, bind_socket, start_site
from nexus.fakeprovider.recorder import RecordedRequest
from nexus.fakeprovider.script import parse_script

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0


class FakeProvider:
    """A fake provider served from its own event loop on a background thread.

    Use it as a context manager, or call ``start`` and ``stop``. The scripting
    methods are safe to call from any thread while the server runs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        keys: dict[str, str | None] | None = None,
        max_recorded: int | None = None,
    ) -> None:
        self.app = FakeProviderApp(keys=keys, max_recorded=max_recorded)
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:41234``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def openai_base(self) -> str:
        """Base URL for the OpenAI SDK (``url + "/v1"``)."""
        return self.url + "/v1"

    @property
    def anthropic_base(self) -> str:
        """Base URL for the Anthropic SDK, which adds ``/v1`` itself."""
        return self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, oldest first."""
        return self.app.recorder.list()

    @property
    def pending(self) -> int:
        """The number of scripted responses not yet consumed."""
        return self.app.scripts.pending()

    def enqueue(self, path_suffix: str | None, response: dict[str, Any]) -> None:
        """Queue a scripted response for the next request whose path ends with the suffix.

        None matches any path. Raises ``ScriptError`` at once for a malformed
        response; see ``nexus.fakeprovider.script`` for the forms.
        """
        self.app.scripts.add(path_suffix, parse_script(response))

    def set_key(self, vendor: str, key: str | None) -> None:
        """Set the API key a vendor accepts until the next ``reset``; None accepts any."""
        self.app.set_key(vendor, key)

    def reset(self) -> None:
        """Clear requests, scripts and key changes, and close hung connections."""
        self.app.reset()

    def start(self) -> Self:
        """Bind the port and serve on a daemon thread; return once it accepts."""
        sock = bind_socket(self._host, self._port)
        self._port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._runner = self._loop.run_until_complete(start_site(self.app, sock))
            except BaseException as exc:
                failure.append(exc)
                started.set()
                raise
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise RuntimeError(
                f"Fake provider failed to start on {self.url}."
            ) from failure[0]
        logger.debug("fake provider listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, cancel open requests and close the event loop."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            cleanup = asyncio.run_coroutine_threadsafe(
                self._runner.cleanup(), self._loop
            )
            cleanup.result(STOP_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
