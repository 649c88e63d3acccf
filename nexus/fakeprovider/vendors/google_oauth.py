"""Fake Google OAuth 2.0 token endpoint for service account JWT assertions.

``POST /token`` takes the form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
and ``assertion=<JWT>``. The assertion must be an RS256 JWT with the claims iss,
scope, aud (the token URL), iat and exp, lasting at most one hour. When the server
has an expected key for ``google_oauth``, it is the service account email that must
issue the assertion. The signature is not verified, because the fake imports no
cryptography package; tests verify it with the service account's public key.

The response is ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``,
where the token depends only on the service account email (``access_token_for``).
Errors use the OAuth form ``{"error", "error_description"}``.
"""

import base64
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from nexus.fakeprovider.vendors.base import Call, Endpoint, Vendor

logger = logging.getLogger(__name__)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3599
MAX_ASSERTION_LIFETIME = 3600


def access_token_for(client_email: str) -> str:
    """Return the access token the fake issues to a service account."""
    return "ya29.fake-" + hashlib.sha256(client_email.encode()).hexdigest()[:24]


class GoogleOAuthVendor(Vendor):
    """Google's OAuth 2.0 token endpoint."""

    name: ClassVar[str] = "google_oauth"

    def __init__(self) -> None:
        self.expected_email: str | None = None

    def endpoints(self) -> list[Endpoint]:
        """Return the token route."""
        return [Endpoint("POST", "/token", self.token)]

    def authenticate(
        self, headers: Mapping[str, str], expected_key: str | None
    ) -> web.Response | None:
        """Accept every caller, because the assertion in the body is checked instead.

        The expected key is kept for the handler, which the server calls right
        after this method without yielding to other requests.
        """
        self.expected_email = expected_key
        return None

    def error_body(
        self, error_type: str, message: str, code: str | None = None
    ) -> dict[str, Any]:
        """Return the OAuth error object."""
        return {"error": error_type, "error_description": message}

    async def token(self, call: Call) -> web.StreamResponse:
        """Exchange a signed JWT assertion for an access token."""
        expected_email = self.expected_email
        form = parse_qs((await call.request.read()).decode("utf-8", "replace"))
        if form.get("grant_type") != [JWT_BEARER_GRANT]:
            return self.error_response(
                400, "unsupported_grant_type", "Invalid grant_type."
            )
        assertion = (form.get("assertion") or [""])[0]
        claims, problem = _read_assertion(assertion, expected_email)
        if problem:
            return self.error_response(400, "invalid_grant", problem)
        return self.json_response(
            {
                "access_token": access_token_for(claims["iss"]),
                "expires_in": TOKEN_LIFETIME,
                "token_type": "Bearer",
            }
        )


def _read_assertion(
    assertion: str, expected_email: str | None
) -> tuple[dict[str, Any], str | None]:
    pieces = assertion.split(".")
    if len(pieces) != 3:
        return (
            {},
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.",
        )
    try:
        header = orjson.loads(_b64decode(pieces[0]))
        claims = orjson.loads(_b64decode(pieces[1]))
        _b64decode(pieces[2])
    except (ValueError, orjson.JSONDecodeError):
        return {}, "Invalid JWT: the assertion is not base64url JSON."

    if header.get("alg") != "RS256":
        return {}, "Invalid JWT: only RS256 assertions are accepted."
    missing = [
        name for name in ("iss", "scope", "aud", "iat", "exp") if name not in claims
    ]
    if missing:
        return {}, f"Invalid JWT: missing claim {missing[0]}."
    now = time.time()
    lifetime = claims["exp"] - claims["iat"]
    if claims["exp"] < now or lifetime > MAX_ASSERTION_LIFETIME or lifetime <= 0:
        return (
            {},
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        )
    if not str(claims["aud"]).endswith("/token"):
        return {}, "Invalid JWT: aud must be the token endpoint."

    if expected_email is not None and claims["iss"] != expected_email:
        return {}, "Invalid grant: account not found"
    return claims, None


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
