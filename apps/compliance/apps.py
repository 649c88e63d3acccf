from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.compliance.models import (
            BodyCapture,
            ComplianceSettings,
            ControlEvent,
            HookStageRecord,
            KillSwitch,
            PassthroughFlag,
            SiemDelivery,
            SiemDestination,
        )
        from apps.compliance.services import destination_token, set_destination_token
        from apps.compliance.snapshot import build_controls_config
        from apps.compliance.stage import ControlsStage
        from apps.gateway.changes import watch_models
        from apps.gateway.pipeline import register_stage
        from apps.gateway.snapshot_builder import EXTENSION_BUILDERS
        from apps.iam.resources import REGISTRY, ResourceType
        from apps.providers.services import SEALED_SECRETS, SealedSecrets
        from nexus.celery import app

        SEALED_SECRETS.append(
            SealedSecrets(
                label="SIEM destination",
                rows=lambda: SiemDestination.objects.exclude(token_ciphertext=""),
                key_id=lambda row: row.token_key_id,
                read=destination_token,
                write=set_destination_token,
                update_fields=("token_ciphertext", "token_key_id"),
            )
        )
        EXTENSION_BUILDERS["controls"] = build_controls_config
        register_stage("controls", ControlsStage)
        watch_models([KillSwitch, PassthroughFlag, ComplianceSettings, SiemDestination])
        REGISTRY[KillSwitch] = ResourceType("compliance", "kill_switch", "organization")
        REGISTRY[PassthroughFlag] = ResourceType(
            "compliance", "passthrough", "organization"
        )
        REGISTRY[ComplianceSettings] = ResourceType(
            "compliance", "settings", "organization"
        )
        REGISTRY[SiemDestination] = ResourceType(
            "compliance", "siem_destination", "organization"
        )
        # These records store their organization as a plain id or reach it through
        # their destination or control, and resource_name() cannot follow either.
        # So it names them as platform rows (superusers only), and their admin pages
        # name each row with its organization.
        REGISTRY[SiemDelivery] = ResourceType("compliance", "siem_delivery", None)
        REGISTRY[ControlEvent] = ResourceType("compliance", "control_event", None)
        REGISTRY[HookStageRecord] = ResourceType("compliance", "stage_record", None)
        REGISTRY[BodyCapture] = ResourceType("compliance", "body_capture", None)
        app.conf.beat_schedule = {
            **(app.conf.beat_schedule or {}),
            "compliance-forward-siem": {
                "task": "apps.compliance.tasks.forward_siem_task",
                "schedule": 10.0,
            },
            "compliance-expire-passthrough": {
                "task": "apps.compliance.tasks.expire_passthrough_task",
                "schedule": 60.0,
            },
        }
