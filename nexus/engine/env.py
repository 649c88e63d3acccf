"""Typed readers for settings that come from the environment.

Django settings, the proxy and the agent read the environment through these, so a
malformed value fails at start-up with the variable's name in the message.
"""

import os
from collections.abc import Mapping


class EnvError(ValueError):
    """An environment variable holds a value of the wrong form."""


class Env:
    """Read typed values from a mapping of environment variables."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def str(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default)

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise EnvError(f"{name} must be true or false, got {raw!r}.")

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise EnvError(f"{name} must be an integer, got {raw!r}.") from None
        if minimum is not None and value < minimum:
            raise EnvError(f"{name} must be at least {minimum}, got {value}.")
        return value

    def float(
        self, name: str, default: float, *, minimum: float | None = None
    ) -> float:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise EnvError(f"{name} must be a number, got {raw!r}.") from None
        if minimum is not None and value < minimum:
            raise EnvError(f"{name} must be at least {minimum}, got {value}.")
        return value

    def list(self, name: str, default: list[str] | None = None) -> list[str]:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return list(default or [])
        return [item.strip() for item in raw.split(",") if item.strip()]

    def secret(self, name: str, default: str = "") -> str:
        """Read a secret from NAME, or from the file named by NAME_FILE."""
        path = self.environ.get(f"{name}_FILE")
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    return handle.read().strip()
            except OSError as exc:
                raise EnvError(
                    f"{name}_FILE names an unreadable file {path!r}: {exc}."
                ) from None
        return self.environ.get(name, default)
