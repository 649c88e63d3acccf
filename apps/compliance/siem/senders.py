"""Send formatted audit events to a destination; any failure raises DeliveryError."""

import asyncio
import hashlib
import hmac
import socket
import ssl
from typing import Any

import aiohttp

from apps.compliance.siem.formats import hec_payload, rfc5424, webhook_payload

TIMEOUT = 10.0


class DeliveryError(Exception):
    """A destination did not accept a batch."""


def send_syslog(destination, records: list[dict[str, Any]]) -> None:
    """Send RFC 5424 messages over UDP, TCP or TLS.

    TCP and TLS frame each message by octet counting (RFC 6587 and RFC 5425). UDP
    sends one datagram per message and cannot tell whether they arrived.
    """
    messages = [rfc5424(record, destination.facility) for record in records]
    try:
        if destination.transport == "udp":
            with socket.socket(_family(destination.host), socket.SOCK_DGRAM) as sock:
                for message in messages:
                    sock.sendto(message, (destination.host, destination.port))
            return
        framed = b"".join(f"{len(message)} ".encode() + message for message in messages)
        with socket.create_connection(
            (destination.host, destination.port), timeout=TIMEOUT
        ) as raw:
            if destination.transport == "tls":
                context = _tls_context(destination)
                with context.wrap_socket(raw, server_hostname=destination.host) as sock:
                    sock.sendall(framed)
            else:
                raw.sendall(framed)
    except OSError as exc:
        raise DeliveryError(
            f"syslog {destination.transport} send failed: {exc}"
        ) from None


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _tls_context(destination) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=destination.ca_certificate or None)
    if not destination.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def send_http(destination, token: str, records: list[dict[str, Any]]) -> None:
    """POST a batch to Splunk HEC or to a webhook; anything but 2xx is a failure."""
    if destination.kind == "splunk_hec":
        body = hec_payload(records)
        headers = {"authorization": f"Splunk {token}"} if token else {}
    else:
        body = webhook_payload(records)
        headers = {}
        if token:
            signature = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
            headers["x-nexus-signature"] = f"sha256={signature}"
    headers["content-type"] = "application/json"
    status = asyncio.run(_post(destination, body, headers))
    if not 200 <= status < 300:
        raise DeliveryError(f"{destination.kind} responded with HTTP {status}")


async def _post(destination, body: bytes, headers: dict[str, str]) -> int:
    options: dict[str, Any] = {}
    if destination.url.startswith("https:"):
        options["ssl"] = _tls_context(destination)
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        ) as session:
            async with session.post(
                destination.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                **options,
            ) as response:
                await response.read()
                return response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise DeliveryError(
            f"{destination.kind} request failed: {type(exc).__name__}"
        ) from None
