"""Checks on ID token claims and the merge of ID token and userinfo claims.

mozilla-django-oidc 5 verifies the ID token's signature, expiry and nonce but not its
issuer or audience, so check_id_token_claims adds the checks that OpenID Connect
Core 1.0, section 3.1.3.7, requires of a client.
"""

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import SuspiciousOperation

# Claims that only the ID token carries reliably; userinfo never overrides them.
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "amr", "acr", "auth_time")


def check_id_token_claims(
    payload: Mapping[str, Any], *, issuer: str, client_id: str
) -> None:
    """Raise SuspiciousOperation unless the ID token names this issuer and client."""
    if payload.get("iss") != issuer:
        raise SuspiciousOperation(
            f"ID token issuer {payload.get('iss')!r} is not the configured issuer."
        )
    audience = payload.get("aud")
    audiences = [audience] if isinstance(audience, str) else list(audience or [])
    if client_id not in audiences:
        raise SuspiciousOperation("ID token audience does not include this client.")
    if len(audiences) > 1 and payload.get("azp") != client_id:
        raise SuspiciousOperation(
            "ID token has several audiences and its azp is not this client."
        )
    if "exp" not in payload:
        raise SuspiciousOperation("ID token has no expiry (exp).")
    if not payload.get("sub"):
        raise SuspiciousOperation("ID token has no subject (sub).")


def merge_claims(
    id_token: Mapping[str, Any], userinfo: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the userinfo claims completed by the ID token's.

    Raises SuspiciousOperation when the two name different subjects, which
    OpenID Connect Core 1.0, section 5.3.2, requires a client to reject.
    """
    if userinfo.get("sub") != id_token.get("sub"):
        raise SuspiciousOperation("Userinfo subject does not match the ID token.")
    claims = {**id_token, **userinfo}
    for name in ID_TOKEN_CLAIMS:
        if name in id_token:
            claims[name] = id_token[name]
    return claims


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """Return a list or string claim as a list of strings; other values give none."""
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def is_true(value: object) -> bool:
    """Return whether a boolean claim is true; some providers send "true" as text."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
