"""The process-wide key ring built from settings."""

from functools import cache

from django.conf import settings

from nexus.engine.vault import KeyRing


@cache
def key_ring() -> KeyRing:
    """Return the key ring from NEXUS_VAULT_KEYS and NEXUS_VAULT_ACTIVE_KEY."""
    return KeyRing.parse(settings.NEXUS_VAULT_KEYS, settings.NEXUS_VAULT_ACTIVE_KEY)
