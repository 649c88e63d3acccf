"""Pooled upstream HTTP client.

One aiohttp session per event loop keeps connections alive across requests. Failures
become ProviderError subclasses with readable messages that never include the
request body or credentials.
"""

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp

from nexus.engine.errors import ProviderTimeoutError, ProviderUnreachableError

logger = logging.getLogger(__name__)


@dataclass
class UpstreamRequest:
    """A request ready to send to a provider."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class UpstreamClient:
    """An aiohttp session with a bounded connection pool."""

    def __init__(self, *, pool_size: int = 512, connect_timeout: float = 10.0) -> None:
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, ttl_dns_cache=300)
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect_timeout
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self.session

    async def send(
        self, request: UpstreamRequest, *, timeout: float
    ) -> aiohttp.ClientResponse:
        """Send request and return the response once its headers arrived.

        Redirects are not followed, so a provider URL cannot send the credential on to
        another host.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self._session().request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    data=request.body or None,
                    allow_redirects=False,
                )
        except TimeoutError:
            raise ProviderTimeoutError(
                f"Provider did not answer within {timeout:g} s."
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ProviderUnreachableError(
                f"Could not connect to provider at {exc.host}:{exc.port}: {exc.os_error or exc}."
            ) from None
        except aiohttp.ClientError as exc:
            raise ProviderUnreachableError(
                f"Provider connection failed: {type(exc).__name__}."
            ) from None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
