from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "apps.hooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.gateway.changes import watch_models
        from apps.gateway.pipeline import register_stage
        from apps.gateway.snapshot_builder import EXTENSION_BUILDERS
        from apps.hooks.models import AllowedWebhookHost, Hook, RuleList
        from apps.hooks.snapshot import build_hooks_config
        from apps.hooks.stage import HooksStage
        from apps.iam.resources import REGISTRY, ResourceType

        EXTENSION_BUILDERS["hooks"] = build_hooks_config
        register_stage("hooks", HooksStage)
        watch_models([Hook, RuleList, AllowedWebhookHost])
        REGISTRY[Hook] = ResourceType("hooks", "hook", "organization")
