import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from apps.keys.models import VirtualKey
from apps.providers.models import ProviderConnection
from apps.tenancy.models import Organization
from nexus.engine.controls import MAX_PASSTHROUGH_SECONDS

SCOPE_GLOBAL = "global"
SCOPE_ORG = "org"
SCOPE_KEY = "key"
SCOPE_PROVIDER = "provider"


class KillSwitch(models.Model):
    """Stops traffic with a 503 while active: for everyone, one organization or one key."""

    scope = models.CharField(
        max_length=16,
        choices=[
            (SCOPE_GLOBAL, "Global"),
            (SCOPE_ORG, "Organization"),
            (SCOPE_KEY, "Key"),
        ],
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.ForeignKey(
        VirtualKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.TextField(
        help_text="Why traffic is stopped; kept in the audit log."
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "kill switches"

    def __str__(self) -> str:
        target = {SCOPE_ORG: self.organization, SCOPE_KEY: self.key}.get(
            self.scope, "all traffic"
        )
        return f"kill switch for {target}"

    def clean(self) -> None:
        if self.scope == SCOPE_KEY and self.key_id is not None:
            # A key switch belongs to the key's organization, so that organization's
            # administrators see and release it.
            if self.organization_id not in (None, self.key.organization_id):
                raise ValidationError(
                    {"key": "The key belongs to another organization."}
                )
            self.organization_id = self.key.organization_id
        else:
            _check_scope(self, {SCOPE_ORG: "organization", SCOPE_KEY: "key"})
        if not self.reason.strip():
            raise ValidationError({"reason": "A written reason is required."})


class PassthroughFlag(models.Model):
    """Emergency passthrough: skip hooks, the cache or normalisation for at most 8 hours."""

    scope = models.CharField(
        max_length=16,
        choices=[
            (SCOPE_GLOBAL, "Global"),
            (SCOPE_PROVIDER, "Provider connection"),
            (SCOPE_ORG, "Organization"),
        ],
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    connection = models.ForeignKey(
        ProviderConnection,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    bypass_hooks = models.BooleanField("bypassHooks", default=False)
    bypass_cache = models.BooleanField("bypassCache", default=False)
    bypass_normalize = models.BooleanField("bypassNormalize", default=False)
    reason = models.TextField(
        help_text="Why the passthrough is needed; kept in the audit log."
    )
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text="At most 8 hours after the start.")
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was switched off or expired."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"passthrough {', '.join(self.bypass_names())} ({self.scope})"

    def bypass_names(self) -> list[str]:
        names = []
        if self.bypass_hooks:
            names.append("hooks")
        if self.bypass_cache:
            names.append("cache")
        if self.bypass_normalize:
            names.append("normalize")
        return names

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.ended_at is None and self.starts_at <= now < self.expires_at

    def clean(self) -> None:
        _check_scope(self, {SCOPE_ORG: "organization", SCOPE_PROVIDER: "connection"})
        if not self.reason.strip():
            raise ValidationError({"reason": "A written reason is required."})
        if not self.bypass_names():
            raise ValidationError(
                "Choose at least one of bypassHooks, bypassCache or bypassNormalize."
            )
        if self.expires_at is None:
            raise ValidationError({"expires_at": "An expiry time is required."})
        starts = self.starts_at or timezone.now()
        if self.expires_at <= starts:
            raise ValidationError({"expires_at": "The expiry must be after the start."})
        if self.expires_at - starts > timedelta(seconds=MAX_PASSTHROUGH_SECONDS):
            raise ValidationError(
                {"expires_at": "A passthrough may last at most 8 hours."}
            )


def _check_scope(row, fields: dict[str, str]) -> None:
    for scope, field in fields.items():
        value = getattr(row, f"{field}_id")
        if row.scope == scope and value is None:
            raise ValidationError(
                {field: f"The {row.scope} scope requires the {field} field."}
            )
        if row.scope != scope and value is not None:
            raise ValidationError(
                {field: f"The {row.scope} scope must leave {field} empty."}
            )


class ControlEvent(models.Model):
    """Audit log of kill switches and passthrough flags going on, off or expiring."""

    control_type = models.CharField(max_length=16)
    control_id = models.BigIntegerField()
    action = models.CharField(max_length=16)
    actor = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.control_type} {self.control_id} {self.action}"


class ComplianceSettings(models.Model):
    """Per-organization compliance settings."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="compliance_settings"
    )
    capture_bodies = models.BooleanField(
        default=False,
        help_text="Store request and response bodies (after redaction) with the audit event.",
    )

    class Meta:
        verbose_name_plural = "compliance settings"

    def __str__(self) -> str:
        return f"compliance settings of {self.organization}"


class HookStageRecord(models.Model):
    """One hook's outcome on one stage of one request; joins AuditEvent by request_id."""

    request_id = models.CharField(max_length=64, db_index=True)
    organization_id = models.BigIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=16)
    hook = models.CharField(max_length=100)
    hook_id = models.BigIntegerField(null=True)
    kind = models.CharField(max_length=32)
    decision = models.CharField(max_length=16)
    outcome = models.CharField(max_length=32, default="ok")
    reason = models.CharField(max_length=500, blank=True)
    rule_ids = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request_id", "stage", "id"]

    def __str__(self) -> str:
        return f"{self.request_id} {self.stage} {self.hook} {self.decision}"


class BodyCapture(models.Model):
    """Captured bodies of one request after redaction: a head inline, the rest spilled."""

    request_id = models.CharField(max_length=64, unique=True)
    organization_id = models.BigIntegerField(null=True, blank=True)
    request_body = models.TextField(blank=True)
    request_bytes = models.BigIntegerField(default=0)
    request_spill_key = models.CharField(max_length=300, blank=True)
    response_body = models.TextField(blank=True)
    response_bytes = models.BigIntegerField(default=0)
    response_spill_key = models.CharField(max_length=300, blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.request_id


class SiemDestination(models.Model):
    """A receiver of forwarded audit events: syslog (CEF), Splunk HEC or an HTTPS webhook."""

    SYSLOG = "syslog"
    SPLUNK = "splunk_hec"
    WEBHOOK = "webhook"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(
        max_length=16,
        choices=[
            (SYSLOG, "Syslog (RFC 5424, CEF)"),
            (SPLUNK, "Splunk HEC"),
            (WEBHOOK, "HTTPS webhook"),
        ],
    )
    enabled = models.BooleanField(default=True)
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty forwards the events of every organization.",
    )
    host = models.CharField(max_length=253, blank=True, help_text="Syslog host.")
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Syslog port.")
    transport = models.CharField(
        max_length=8,
        choices=[("tcp", "TCP"), ("tls", "TLS"), ("udp", "UDP")],
        default="tcp",
    )
    facility = models.PositiveSmallIntegerField(
        default=16, help_text="Syslog facility; 16 is local0."
    )
    url = models.URLField(
        max_length=500, blank=True, help_text="Splunk HEC or webhook URL."
    )
    token_ciphertext = models.TextField(blank=True, editable=False)
    token_key_id = models.CharField(max_length=64, blank=True, editable=False)
    token_uuid = models.UUIDField(default=uuid.uuid4, editable=False)
    verify_tls = models.BooleanField(default=True)
    ca_certificate = models.TextField(
        blank=True, help_text="PEM CA bundle for a private CA."
    )
    batch_size = models.PositiveIntegerField(default=100)
    max_attempts = models.PositiveIntegerField(
        default=8, help_text="Attempts before events go to the dead-letter state."
    )
    backoff_seconds = models.FloatField(
        default=2.0,
        help_text="First retry delay; each retry doubles it, up to 10 minutes.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SIEM destination"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.SYSLOG and (not self.host or not self.port):
            raise ValidationError("A syslog destination needs a host and a port.")
        if self.kind in (self.SPLUNK, self.WEBHOOK) and not self.url:
            raise ValidationError({"url": "This destination needs a URL."})


class SiemDelivery(models.Model):
    """One audit event waiting for one destination, or dead-lettered after the last try."""

    PENDING = "pending"
    DEAD = "dead"

    destination = models.ForeignKey(
        SiemDestination, on_delete=models.CASCADE, related_name="deliveries"
    )
    request_id = models.CharField(max_length=64)
    state = models.CharField(
        max_length=8,
        default=PENDING,
        choices=[(PENDING, "Pending"), (DEAD, "Dead letter")],
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = "SIEM delivery"
        verbose_name_plural = "SIEM deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "request_id"], name="siem_delivery_unique"
            )
        ]
        indexes = [models.Index(fields=["destination", "state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.request_id} -> {self.destination_id} ({self.state})"
