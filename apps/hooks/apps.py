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
        from apps.providers.services import SEALED_SECRETS, SealedSecrets

        # Lets rekey_credentials re-encrypt webhook header values with the others.
        SEALED_SECRETS.append(
            SealedSecrets(
                label="webhook hook headers",
                rows=lambda: Hook.objects.exclude(headers_ciphertext=""),
                key_id=lambda row: row.headers_key_id,
                read=Hook.read_sealed_headers,
                write=Hook.write_sealed_headers,
                update_fields=("headers_ciphertext", "headers_key_id"),
            )
        )
        EXTENSION_BUILDERS["hooks"] = build_hooks_config
        register_stage("hooks", HooksStage)
        watch_models([Hook, RuleList, AllowedWebhookHost])
        REGISTRY[Hook] = ResourceType("hooks", "hook", "organization")
        # Rule lists and the webhook host allowlist serve every organization's hooks,
        # so they are platform rows that only superusers read and change.
        REGISTRY[RuleList] = ResourceType("hooks", "rule_list", None)
        REGISTRY[AllowedWebhookHost] = ResourceType("hooks", "webhook_host", None)
