"""Build the controls part of the config snapshot."""

from django.utils import timezone

from nexus.engine.controls import ControlsConfig, KillSwitchEntry, PassthroughEntry


def build_controls_config() -> ControlsConfig:
    """Read active kill switches, unexpired passthrough flags and capture settings."""
    from apps.compliance.models import (
        ComplianceSettings,
        KillSwitch,
        PassthroughFlag,
        SiemDestination,
    )

    switches = tuple(
        KillSwitchEntry(
            id=row.pk,
            scope=row.scope,
            scope_id=row.organization_id if row.scope == "org" else row.key_id,
        )
        for row in KillSwitch.objects.filter(active=True)
    )
    flags = tuple(
        PassthroughEntry(
            id=row.pk,
            scope=row.scope,
            bypass=frozenset(row.bypass_names()),
            expires_at=row.expires_at.timestamp(),
            starts_at=row.starts_at.timestamp(),
            scope_id=row.organization_id if row.scope == "org" else row.connection_id,
        )
        for row in PassthroughFlag.objects.filter(
            ended_at__isnull=True, expires_at__gt=timezone.now()
        )
    )
    capture = frozenset(
        ComplianceSettings.objects.filter(capture_bodies=True).values_list(
            "organization_id", flat=True
        )
    )
    forward = tuple(
        SiemDestination.objects.filter(enabled=True).values_list(
            "pk", "organization_id"
        )
    )
    return ControlsConfig(
        kill_switches=switches, passthrough=flags, capture_orgs=capture, forward=forward
    )
