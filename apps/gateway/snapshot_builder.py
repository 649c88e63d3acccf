"""Build the traffic plane's config snapshot from the database.

Other apps add their own parts (quotas, routes, hooks) by registering a builder in
EXTENSION_BUILDERS; each returns a plain value stored under its name.
"""

import logging
from collections.abc import Callable
from typing import Any

from apps.keys.models import VirtualKey
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import read_credential
from nexus.engine.pricing import usd_per_million_to_nano
from nexus.engine.snapshot import (
    ConnectionEntry,
    KeyEntry,
    ModelEntry,
    Prices,
    Snapshot,
)
from nexus.engine.vault import VaultError

logger = logging.getLogger(__name__)

EXTENSION_BUILDERS: dict[str, Callable[[], Any]] = {}


def build_snapshot(version: int) -> Snapshot:
    """Read keys, connections, models and every registered extension into a snapshot."""
    keys = {}
    for key in VirtualKey.objects.filter(revoked_at__isnull=True):
        keys[key.digest] = KeyEntry(
            id=key.pk,
            org_id=key.organization_id,
            project_id=key.project_id,
            prefix=key.prefix,
            allowed_models=frozenset(key.allowed_models or ()),
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
            owner_id=key.owner_id,
        )
    connections = {}
    for connection in ProviderConnection.objects.filter(enabled=True):
        try:
            credential = read_credential(connection)
        except VaultError as exc:
            logger.error("provider connection %s skipped: %s", connection.name, exc)
            continue
        connections[connection.pk] = ConnectionEntry(
            id=connection.pk,
            name=connection.name,
            provider_type=connection.provider_type,
            base_url=connection.base_url,
            credential=credential,
            region=connection.region,
            options=dict(connection.options or {}),
            org_id=connection.organization_id,
        )
    models = {}
    for model in Model.objects.filter(
        enabled=True, connection_id__in=list(connections)
    ):
        models[model.name] = ModelEntry(
            id=model.pk,
            name=model.name,
            aliases=tuple(model.aliases or ()),
            kind=model.kind,
            connection_id=model.connection_id,
            upstream_model=model.upstream_model,
            org_id=connections[model.connection_id].org_id,
            prices=Prices(
                input=usd_per_million_to_nano(model.input_price),
                output=usd_per_million_to_nano(model.output_price),
                cached_input=None
                if model.cached_input_price is None
                else usd_per_million_to_nano(model.cached_input_price),
                cache_write=None
                if model.cache_write_price is None
                else usd_per_million_to_nano(model.cache_write_price),
            ),
        )
    extensions = {name: builder() for name, builder in EXTENSION_BUILDERS.items()}
    return Snapshot(
        version=version,
        keys=keys,
        models=models,
        connections=connections,
        extensions=extensions,
    )
