"""Virtual key format and digest, shared by the control plane and the traffic plane."""

import hashlib
import hmac
import secrets

KEY_PREFIX = "nvk_"
DISPLAY_LENGTH = 12


def generate_key() -> str:
    """Return a new virtual key: the prefix and 256 random bits, URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_key(secret: str | bytes, key: str) -> str:
    """Return the hex HMAC-SHA256 of key under secret; only this digest is stored."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return hmac.new(
        secret, key.encode("utf-8", "surrogateescape"), hashlib.sha256
    ).hexdigest()


def display_prefix(key: str) -> str:
    """Return the short, non-secret start of a key shown in lists and audit."""
    return key[:DISPLAY_LENGTH]
