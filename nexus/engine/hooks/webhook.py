"""Forward a request to an external decision service and apply its decision.

The service gets the text (as sent, with earlier redactions applied, or not at
all) and returns approve, redact or block. The configured ceiling caps that decision,
so a service allowed to redact can never block.

Requests are guarded against server-side request forgery: the host name is
resolved and every address checked, and private, loopback, link-local, reserved
and cloud metadata addresses are refused unless an administrator allowed that
host. The connection goes to the addresses that were checked, and redirects are
not followed.
"""

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver

from nexus.engine.hooks.base import (
    Decision,
    Hook,
    HookContext,
    HookError,
    Redaction,
    Segment,
    Verdict,
)
from nexus.engine.hooks.options import Option, OptionsSpec

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024
# The pipeline cancels a hook at its own timeout; this only bounds a stray call.
CLIENT_TIMEOUT = 300.0
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fd00:ec2::254",
    )
)


class ForbiddenAddressError(HookError):
    """The decision service's address is not allowed."""


def forbidden_reason(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> str | None:
    """Return why a webhook may not connect to address, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


def check_host(host: str, addresses: Sequence[str], allowed: frozenset[str]) -> None:
    """Raise ForbiddenAddressError unless host is allowed or every address is public."""
    if host.lower() in allowed:
        return
    for text in addresses:
        reason = forbidden_reason(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason is not None:
            raise ForbiddenAddressError(
                f"the decision service host {host} resolves to {reason}; "
                "an administrator must allow the host first"
            )


class GuardedResolver(AbstractResolver):
    """Resolve names for aiohttp and refuse forbidden addresses before connecting."""

    def __init__(self, allowed_hosts: Callable[[], frozenset[str]]) -> None:
        self.allowed_hosts = allowed_hosts

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family
        )
        check_host(host, [info[4][0] for info in infos], self.allowed_hosts())
        return [
            {
                "hostname": host,
                "host": info[4][0],
                "port": info[4][1],
                "family": info[0],
                "proto": info[2],
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for info in infos
        ]

    async def close(self) -> None:
        return None


class WebhookClient:
    """The HTTP client of webhook hooks: one guarded aiohttp session per event loop."""

    def __init__(self, allowed_hosts: Callable[[], frozenset[str]]) -> None:
        self.allowed_hosts = allowed_hosts
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.allowed_hosts), use_dns_cache=False
            )
            self.session = aiohttp.ClientSession(connector=connector)
        return self.session

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        """POST body and return the status and at most MAX_ANSWER_BYTES of the response."""
        host = urlsplit(url).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            # aiohttp skips the resolver for IP literals, so they are checked here.
            check_host(host, [str(literal)], self.allowed_hosts())
        try:
            async with self._session().post(
                url,
                data=body,
                headers={"content-type": "application/json", **headers},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                return response.status, await response.content.read(MAX_ANSWER_BYTES)
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, HookError) else None
            if cause is not None:
                raise cause from None
            raise HookError(
                f"the decision service is unreachable ({type(exc).__name__})"
            ) from None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http or https URL.")
    if parts.username or parts.password:
        raise ValueError("the URL must not carry credentials; use headers.")


def _headers(value: dict) -> None:
    for name, header in value.items():
        if (
            not isinstance(header, str)
            or not name
            or any(char in name for char in ":\r\n ")
        ):
            raise ValueError(
                f"header {name!r} must be a token name with a string value."
            )


class WebhookHook(Hook):
    """Ask an external decision service and cap its decision at the ceiling."""

    kind = "webhook"
    label = "External decision service"
    stages = frozenset({"request"})
    is_async = True
    options = OptionsSpec(
        {
            "url": Option(
                "str", required=True, check=_url, help="Where requests are POSTed."
            ),
            "payload": Option(
                "str",
                "redacted",
                choices=("full", "redacted", "metadata"),
                help="full: text as sent; redacted: after earlier hooks; metadata: no text.",
            ),
            "ceiling": Option(
                "str",
                "block",
                choices=("approve", "redact", "block"),
                help="The strongest decision the service may make.",
            ),
            "headers": Option(
                "dict", {}, check=_headers, help="Extra request headers."
            ),
        }
    )

    async def check_async(
        self, context: HookContext, segments: Sequence[Segment]
    ) -> Verdict:
        client = self.services.http
        if client is None:
            raise HookError("no webhook client is configured")
        payload = self.config["payload"]
        sent = list(context.original) if payload == "full" else list(segments)
        body = orjson.dumps(self._request(context, sent, payload))
        status, raw = await client.post(
            self.config["url"], body, self.config["headers"], timeout=CLIENT_TIMEOUT
        )
        if 300 <= status < 400:
            raise HookError(
                f"the decision service responded with a redirect ({status}), which is not followed"
            )
        if status >= 400:
            raise HookError(f"the decision service responded with HTTP {status}")
        return self._verdict(_parse(raw), sent, segments, payload)

    def _request(
        self, context: HookContext, sent: list[Segment], payload: str
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "request_id": context.request_id,
            "stage": context.stage,
            "payload": payload,
            "metadata": {
                "organization_id": context.org_id,
                "project_id": context.project_id,
                "key_id": context.key_id,
                "client_ip": context.client_ip,
                "ingress": context.ingress,
                "model": context.model,
                "provider": context.provider,
                "region": context.region,
                "tags": sorted(context.tags),
            },
        }
        if payload != "metadata":
            request["segments"] = [
                {
                    "index": index,
                    "kind": segment.kind,
                    "role": segment.role,
                    "text": segment.text,
                }
                for index, segment in enumerate(sent)
            ]
        return request

    def _verdict(
        self,
        answer: dict[str, Any],
        sent: list[Segment],
        current: Sequence[Segment],
        payload: str,
    ) -> Verdict:
        decision = Decision.parse(str(answer.get("decision", "approve")))
        ceiling = Decision.parse(self.config["ceiling"])
        capped = min(decision, ceiling)
        tags = frozenset(
            str(tag) for tag in answer.get("tags") or [] if isinstance(tag, str)
        )
        rule_ids = tuple(str(item) for item in answer.get("rule_ids") or [])
        reason = str(answer.get("reason") or "")[:200]
        if capped is not decision:
            reason = (
                f"{reason} (capped from {decision.label} to {capped.label})".strip()
            )
        redactions: tuple[Redaction, ...] = ()
        if capped is Decision.REDACT and payload != "metadata":
            redactions = _redactions(
                answer.get("redactions") or [], sent, current, payload
            )
        return Verdict(capped, reason, rule_ids, tags, redactions)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HookError("the decision service response is not valid JSON") from None
    if not isinstance(answer, dict):
        raise HookError("the decision service response is not a JSON object")
    if str(answer.get("decision", "approve")).upper() not in Decision.__members__:
        raise HookError("the decision service returned an unknown decision")
    return answer


def _redactions(
    items: list[Any], sent: list[Segment], current: Sequence[Segment], payload: str
) -> tuple[Redaction, ...]:
    found = []
    for item in items:
        if not isinstance(item, dict):
            raise HookError(
                "a redaction in the decision service response is not an object"
            )
        index, start, end = item.get("segment"), item.get("start"), item.get("end")
        if not all(isinstance(value, int) for value in (index, start, end)) or not (
            0 <= index < len(sent) and 0 <= start < end <= len(sent[index].text)
        ):
            raise HookError(
                "a redaction in the decision service response is out of range"
            )
        replacement = str(
            item.get("replacement") or f"[{item.get('label') or 'REDACTED'}]"
        )
        rule_id = f"webhook.{item.get('label') or 'redaction'}"
        if payload == "redacted":
            found.append(Redaction(index, start, end, replacement, rule_id))
            continue
        # Offsets point into the text as sent; earlier hooks may have shifted the
        # current text, so every occurrence of the value is redacted there.
        value = sent[index].text[start:end]
        text = current[index].text
        position = text.find(value)
        while position >= 0:
            found.append(
                Redaction(index, position, position + len(value), replacement, rule_id)
            )
            position = text.find(value, position + len(value))
    return tuple(found)
