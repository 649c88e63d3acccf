from django.apps import AppConfig


class CacheConfig(AppConfig):
    name = "apps.cache"
    label = "cache"
    verbose_name = "Response cache"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.cache.models import (
            CachePolicy,
            CachePurge,
            QuarantinedEntry,
            SemanticIndex,
        )
        from apps.cache.snapshot import build_cache_config
        from apps.cache.stage import CacheStage
        from apps.gateway.changes import watch_models
        from apps.gateway.pipeline import register_stage
        from apps.gateway.snapshot_builder import EXTENSION_BUILDERS
        from apps.iam.resources import REGISTRY, ResourceType

        REGISTRY[CachePolicy] = ResourceType(
            "cache", "policy", "organization", "project"
        )
        REGISTRY[CachePurge] = ResourceType("cache", "purge", "organization")
        REGISTRY[QuarantinedEntry] = ResourceType("cache", "quarantine", "organization")
        # Indexes are shared by the policies of every organization.
        REGISTRY[SemanticIndex] = ResourceType("cache", "semantic_index", None)
        EXTENSION_BUILDERS["cache"] = build_cache_config
        register_stage("cache", CacheStage)
        watch_models([CachePolicy, CachePurge, QuarantinedEntry, SemanticIndex])
