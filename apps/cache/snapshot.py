"""Build the cache part of the config snapshot from the cache models."""

import dataclasses

from django.db.models import Max

from apps.cache.models import CachePolicy, CachePurge, QuarantinedEntry, SemanticIndex
from nexus.engine.cache.config import CacheConfig, SemanticSettings
from nexus.engine.cache.config import CachePolicy as PolicyEntry
from nexus.engine.cache.keys import SemanticRules

# Quarantined ids kept in every gateway's memory; older reports stay in the table.
MAX_QUARANTINED = 10_000


def build_cache_config() -> CacheConfig:
    """Read policies, purge generations and quarantined entries into a CacheConfig."""
    indexes = {index.pk: _semantic(index) for index in SemanticIndex.objects.all()}
    config = CacheConfig(
        global_generation=_global_generation(),
        generations=_org_generations(),
        quarantined=frozenset(
            QuarantinedEntry.objects.filter(released_at__isnull=True)
            .order_by("-id")
            .values_list("entry_id", flat=True)[:MAX_QUARANTINED]
        ),
    )
    for row in CachePolicy.objects.order_by("id"):
        entry = _policy(row, indexes)
        policies = _level(config, row)
        policies.setdefault(row.model, entry)
    return config


def _level(config: CacheConfig, row: CachePolicy) -> dict:
    if row.key_id:
        return config.by_key.setdefault(row.key_id, {})
    if row.project_id:
        return config.by_project.setdefault(row.project_id, {})
    if row.organization_id:
        return config.by_org.setdefault(row.organization_id, {})
    return config.everywhere


def _semantic(index: SemanticIndex) -> SemanticSettings:
    return SemanticSettings(
        index=index.name,
        embedding_model=index.embedding_model,
        dimensions=index.dimensions,
        backend=index.backend,
        generation=index.generation,
        threshold=index.threshold,
        ttl_seconds=index.ttl_seconds,
        timeout_seconds=index.timeout_ms / 1000,
        breaker_threshold=index.breaker_failures,
        breaker_cool_down=float(index.breaker_cool_down_seconds),
    )


def _policy(row: CachePolicy, indexes: dict[int, SemanticSettings]) -> PolicyEntry:
    semantic = indexes.get(row.semantic_index_id) if row.semantic_index_id else None
    if semantic is not None and row.semantic_threshold is not None:
        semantic = dataclasses.replace(semantic, threshold=row.semantic_threshold)
    return PolicyEntry(
        id=row.pk,
        exact=row.enabled,
        ttl_seconds=row.ttl_seconds,
        coalesce=row.coalesce,
        share=row.share,
        honor_headers=row.honor_headers,
        semantic=semantic,
        semantic_rules=SemanticRules(
            include_tools=row.semantic_include_tools,
            max_temperature=row.semantic_max_temperature,
        ),
    )


def _global_generation() -> int:
    return (
        CachePurge.objects.filter(organization__isnull=True).aggregate(Max("id"))[
            "id__max"
        ]
        or 0
    )


def _org_generations() -> dict[int, int]:
    rows = (
        CachePurge.objects.filter(organization__isnull=False)
        .values("organization_id")
        .annotate(last=Max("id"))
    )
    return {row["organization_id"]: row["last"] for row in rows}
