from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "apps.quotas"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.gateway.changes import watch_models
        from apps.gateway.pipeline import register_stage
        from apps.gateway.snapshot_builder import EXTENSION_BUILDERS
        from apps.iam.resources import REGISTRY, ResourceType
        from apps.quotas.gateway import build_stage
        from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup
        from apps.quotas.snapshot import build_quota_config

        REGISTRY[Quota] = ResourceType("quotas", "quota", "organization", "project")
        REGISTRY[QuotaSettings] = ResourceType("quotas", "settings", "organization")
        REGISTRY[QuotaAlert] = ResourceType("quotas", "alert", "organization")
        REGISTRY[UsageRollup] = ResourceType("quotas", "rollup", "organization")
        watch_models([Quota, QuotaSettings])
        EXTENSION_BUILDERS["quotas"] = build_quota_config
        register_stage("quotas", build_stage)
