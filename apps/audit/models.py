from django.db import models

from apps.keys.models import VirtualKey
from apps.tenancy.models import Organization, Project


class AuditEvent(models.Model):
    """One gateway request: who sent it, what served it, what it cost.

    Foreign keys carry no database constraint so audit rows outlive the keys,
    projects and organizations they name.
    """

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    organization = models.ForeignKey(
        Organization,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    project = models.ForeignKey(
        Project,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    key = models.ForeignKey(
        VirtualKey,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    key_prefix = models.CharField(max_length=16, blank=True)
    ingress = models.CharField(max_length=32)
    stream = models.BooleanField(default=False)
    requested_model = models.CharField(max_length=200, blank=True)
    model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Public model name that served the request.",
    )
    upstream_model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(
        max_length=100, blank=True, help_text="Provider connection name."
    )
    provider_type = models.CharField(max_length=40, blank=True)
    status_code = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    usage_reported = models.BooleanField(
        default=False, help_text="False when the provider reported no usage."
    )
    cost_nano_usd = models.BigIntegerField(
        default=0, help_text="Cost in nano-USD (10^-9 USD)."
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["key", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.status_code}"

    @property
    def cost_usd(self):
        from nexus.engine.pricing import nano_to_usd

        return nano_to_usd(self.cost_nano_usd)
