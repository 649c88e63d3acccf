"""Secrets the embedded default creates on first start and keeps in the data directory."""

import base64
import os
import secrets
from pathlib import Path


def load_or_create_secret(path: Path, size: int, *, encoding: str = "urlsafe") -> str:
    """Return the secret stored at path, creating it with size random bytes if missing.

    Production deployments set the secret in the environment instead; this keeps a
    single-machine install working across restarts without configuration.
    """
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    raw = secrets.token_bytes(size)
    if encoding == "base64":
        value = base64.b64encode(raw).decode("ascii")
    else:
        value = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first; both must use the same value.
        return path.read_text(encoding="utf-8").strip()
    try:
        os.write(fd, value.encode("ascii"))
    finally:
        os.close(fd)
    return value
