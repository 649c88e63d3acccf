"""The request attributes that policies look at, and the request id.

The OIDC login stores the ID token claims in the session under SESSION_CLAIMS_KEY; the
`mfa` condition holds when their `amr` list contains "mfa".
"""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

SESSION_CLAIMS_KEY = "nexus_oidc_claims"
REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class AccessContext:
    """Attributes of the request an authorization decision is made for."""

    source_ip: str | None = None
    now: datetime | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    request_id: str = ""

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)


def request_id_for(request: HttpRequest) -> str:
    """Return the request's id: a well-formed X-Request-ID header, else a new UUID."""
    existing = getattr(request, "nexus_request_id", None)
    if existing:
        return existing
    supplied = request.META.get(REQUEST_ID_HEADER, "")
    request_id = supplied if _REQUEST_ID_PATTERN.match(supplied) else uuid.uuid4().hex
    request.nexus_request_id = request_id
    return request_id


def store_session_claims(request: HttpRequest, claims: Mapping[str, Any]) -> None:
    """Keep the login's ID token claims in the session for the `mfa` condition."""
    request.session[SESSION_CLAIMS_KEY] = {"amr": list(claims.get("amr") or [])}


def context_from_request(request: HttpRequest) -> AccessContext:
    """Build the access context of a Django or DRF request."""
    session = getattr(request, "session", None)
    claims = session.get(SESSION_CLAIMS_KEY, {}) if session is not None else {}
    # NOTE: the client address is REMOTE_ADDR; behind a reverse proxy that is the
    # proxy's address unless the server rewrites it from a trusted forwarding header.
    return AccessContext(
        source_ip=request.META.get("REMOTE_ADDR") or None,
        claims=claims,
        request_id=request_id_for(request),
    )
