"""Operator actions on the cache: purge, quarantine and dropping a semantic index.

Each action writes a row; the row change bumps the config version, and every gateway
applies it from its next snapshot: a purge moves the org's purge generation (older
entries become unreachable and semantic entries are deleted), a quarantined entry id
is never served or stored again, and a new index generation drops and recreates the
index on its next use.
"""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.cache.models import CachePurge, QuarantinedEntry, SemanticIndex
from apps.tenancy.models import Organization

logger = logging.getLogger(__name__)


def purge_cache(
    organization: Organization | None, *, actor=None, reason: str = ""
) -> CachePurge:
    """Make every cached answer of the organization (all orgs when None) unreachable."""
    purge = CachePurge.objects.create(
        organization=organization, requested_by=actor, reason=reason
    )
    logger.info(
        "cache purge requested",
        extra={"tenant_id": organization.pk if organization else None},
    )
    return purge


def quarantine_entry(
    entry_id: str,
    *,
    organization: Organization | None = None,
    actor=None,
    reason: str = "",
) -> QuarantinedEntry:
    """Stop serving the cached answer entry_id; repeat calls keep one active row."""
    entry, created = QuarantinedEntry.objects.get_or_create(
        entry_id=entry_id.strip().lower(),
        defaults={"organization": organization, "reported_by": actor, "reason": reason},
    )
    if not created and entry.released_at is not None:
        entry.released_at = None
        entry.reason = reason or entry.reason
        entry.save(update_fields=["released_at", "reason"])
    logger.info("cache entry %s quarantined", entry.entry_id[:16])
    return entry


def release_entry(entry: QuarantinedEntry) -> None:
    """Allow the entry id to be cached and served again."""
    entry.released_at = timezone.now()
    entry.save(update_fields=["released_at"])


def drop_semantic_index(index: SemanticIndex) -> None:
    """Drop every vector of the index; gateways recreate it empty on next use."""
    with transaction.atomic():
        SemanticIndex.objects.filter(pk=index.pk).update(generation=F("generation") + 1)
        index.refresh_from_db()
        # update() sends no post_save, which the config change notice listens to.
        index.save(update_fields=["updated_at"])
    logger.info("semantic index %s dropped", index.name)
