"""Tell every gateway process that the control-plane config changed.

A saved or deleted config row bumps a version number once the transaction commits.
With Redis the version lives in Redis and a pub/sub message wakes every process; each
process also polls the version, so a lost message delays a reload by one poll period
at most. The embedded default keeps the version in this process.
"""

import logging
import threading
from collections.abc import Iterable

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

VERSION_KEY = "nexus:config:version"
CHANNEL = "nexus:config:changed"

_local_version = 0
_local_lock = threading.Lock()
_local_listeners: list = []


def redis_client() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def bump_version() -> int:
    """Advance the config version and notify listeners; return the new version."""
    global _local_version
    client = redis_client()
    if client is None:
        with _local_lock:
            _local_version += 1
            version = _local_version
        for listener in _local_listeners:
            listener(version)
        return version
    try:
        version = int(client.incr(VERSION_KEY))
        client.publish(CHANNEL, str(version))
    except redis.RedisError as exc:
        # Gateways keep serving the last snapshot; the next successful bump reaches them.
        logger.error("could not publish config change: %s", exc)
        return 0
    finally:
        client.close()
    return version


def current_version() -> int:
    """Return the config version without notifying anyone (sync, control plane only)."""
    client = redis_client()
    if client is None:
        return _local_version
    try:
        return int(client.get(VERSION_KEY) or 0)
    finally:
        client.close()


def local_version() -> int:
    return _local_version


def add_local_listener(listener) -> None:
    _local_listeners.append(listener)


def remove_local_listener(listener) -> None:
    if listener in _local_listeners:
        _local_listeners.remove(listener)


def _on_change(sender, **kwargs) -> None:
    transaction.on_commit(bump_version)


def watch_models(models: Iterable[type[Model]]) -> None:
    """Bump the config version whenever a row of these models is saved or deleted."""
    for model in models:
        post_save.connect(
            _on_change, sender=model, dispatch_uid=f"config-{model._meta.label}-save"
        )
        post_delete.connect(
            _on_change, sender=model, dispatch_uid=f"config-{model._meta.label}-delete"
        )
