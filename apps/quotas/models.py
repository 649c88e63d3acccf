import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from apps.keys.models import VirtualKey
from apps.providers.models import ProviderConnection
from apps.tenancy.models import Organization, Project
from nexus.engine.pricing import NANO_PER_USD
from nexus.engine.quotas.rules import AXES, QuotaRule, Unit
from nexus.engine.quotas.windows import Window, WindowError

# Counters are summed as Lua numbers in Redis, exact up to 2**53 base units.
MAX_USD_LIMIT = Decimal(9_000_000)
MAX_COUNT_LIMIT = 2**53 - 1

AXIS_CHOICES = [
    ("organization", "Organization"),
    ("project", "Project"),
    ("key", "Virtual key"),
    ("provider", "Provider connection"),
    ("model", "Model"),
    ("project+model", "Project and model"),
    ("project+provider", "Project and provider connection"),
    ("key+model", "Virtual key and model"),
    ("key+provider", "Virtual key and provider connection"),
    ("provider+model", "Provider connection and model"),
]
UNIT_CHOICES = [
    (Unit.TOKENS.value, "Tokens (input + output)"),
    (Unit.USD.value, "USD"),
    (Unit.REQUESTS.value, "Requests"),
]
WINDOW_CHOICES = [
    ("minute", "Sliding minute(s)"),
    ("hour", "Sliding hour(s)"),
    ("day", "Sliding day(s)"),
    ("calendar_day", "Calendar day"),
    ("calendar_week", "Calendar week (Monday to Sunday)"),
    ("calendar_month", "Calendar month"),
]


class Quota(models.Model):
    """A limit on tokens, spend or requests over a window, split along an axis.

    The axis decides how usage is split into counters: "key" keeps one counter per
    virtual key, "organization" one for all matching traffic. The optional project,
    key, provider and model fields narrow the traffic the quota applies to.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="quotas"
    )
    name = models.CharField(max_length=200)
    axis = models.CharField(
        max_length=32,
        choices=AXIS_CHOICES,
        default="key",
        help_text="How usage is split into counters: one per key, per key and model, …",
    )
    unit = models.CharField(max_length=16, choices=UNIT_CHOICES)
    window = models.CharField(max_length=32, choices=WINDOW_CHOICES)
    window_size = models.PositiveIntegerField(
        default=1,
        help_text="Length of a sliding window in its unit (30 with 'Sliding day(s)' "
        "is 30 days). Calendar windows use 1.",
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA time zone in which calendar days, weeks and months start.",
    )
    soft_limit = models.DecimalField(
        max_digits=24,
        decimal_places=9,
        null=True,
        blank=True,
        help_text="Usage at which an alert fires, once per window. In the unit: "
        "USD, tokens or requests.",
    )
    hard_limit = models.DecimalField(
        max_digits=24,
        decimal_places=9,
        null=True,
        blank=True,
        help_text="Usage past which requests are rejected with 429. In the unit.",
    )
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quotas",
        help_text="Count only this project's traffic.",
    )
    key = models.ForeignKey(
        VirtualKey,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quotas",
        help_text="Count only this key's traffic.",
    )
    provider = models.ForeignKey(
        ProviderConnection,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quotas",
        help_text="Count only traffic served by this provider connection.",
    )
    model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Count only traffic to this public model name.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization__name", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.soft_limit is None and self.hard_limit is None:
            errors["hard_limit"] = "Set a hard limit, a soft limit or both."
        for name in ("soft_limit", "hard_limit"):
            message = self._limit_error(getattr(self, name))
            if message:
                errors[name] = message
        if (
            not errors
            and self.soft_limit is not None
            and self.hard_limit is not None
            and self.soft_limit >= self.hard_limit
        ):
            errors["soft_limit"] = "The soft limit must be below the hard limit."
        try:
            Window(self.window, self.window_size, self.timezone)
        except WindowError as exc:
            field = "timezone" if "time zone" in str(exc) else "window_size"
            errors[field] = str(exc)
        errors.update(self._scope_errors())
        if errors:
            raise ValidationError(errors)

    def _limit_error(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        if value <= 0:
            return "A limit must be above zero."
        if self.unit == Unit.USD:
            if value > MAX_USD_LIMIT:
                return f"A USD limit must be at most {MAX_USD_LIMIT}."
            return ""
        if value != value.to_integral_value():
            return f"A limit in {self.unit} must be a whole number."
        if value > MAX_COUNT_LIMIT:
            return f"A limit must be at most {MAX_COUNT_LIMIT}."
        return ""

    def _scope_errors(self) -> dict[str, str]:
        errors = {}
        org_id = self.organization_id
        if self.project_id and self.project.organization_id != org_id:
            errors["project"] = "The project belongs to another organization."
        if self.key_id and self.key.organization_id != org_id:
            errors["key"] = "The key belongs to another organization."
        if self.axis not in AXES:
            errors["axis"] = f'Unknown axis "{self.axis}".'
        return errors

    def base_amount(self, value: Decimal | None) -> int | None:
        """Return a limit in counter units: nano-USD, tokens or requests."""
        if value is None:
            return None
        if self.unit == Unit.USD:
            return int(value * NANO_PER_USD)
        return int(value)

    def to_rule(self) -> QuotaRule:
        """Return the traffic plane's view of this quota."""
        return QuotaRule(
            id=self.pk,
            uid=self.uid.hex[:16],
            name=self.name,
            org_id=self.organization_id,
            axis=self.axis,
            unit=Unit(self.unit),
            window=Window(self.window, self.window_size, self.timezone),
            hard_limit=self.base_amount(self.hard_limit),
            soft_limit=self.base_amount(self.soft_limit),
            project_id=self.project_id,
            key_id=self.key_id,
            connection_id=self.provider_id,
            model=self.model,
        )


class QuotaSettings(models.Model):
    """An organization's quota settings: outage behaviour, estimates and alerts."""

    FAIL_OPEN = "open"
    FAIL_CLOSED = "closed"
    FAIL_CHOICES = [
        (FAIL_OPEN, "Fail open: admit requests uncounted"),
        (FAIL_CLOSED, "Fail closed: reject requests with 503"),
    ]

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="quota_settings"
    )
    fail_mode = models.CharField(
        max_length=8,
        choices=FAIL_CHOICES,
        default=FAIL_OPEN,
        help_text="What happens to requests while the quota counters (Redis) are "
        "unreachable.",
    )
    default_output_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Output tokens reserved for a request that sets no max_tokens. "
        "Empty uses the gateway default.",
    )
    alert_webhook_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="URL that receives a JSON POST when a quota reaches its soft limit.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "quota settings"

    def __str__(self) -> str:
        return f"Quota settings of {self.organization}"


class QuotaAlert(models.Model):
    """A soft-limit crossing: one row per counter and window, and its webhook delivery.

    Foreign keys carry no database constraint so the record outlives its quota.
    """

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    NO_WEBHOOK = "no_webhook"
    STATUS_CHOICES = [
        (PENDING, "Pending"),
        (DELIVERED, "Delivered"),
        (FAILED, "Failed"),
        (NO_WEBHOOK, "No webhook configured"),
    ]

    organization = models.ForeignKey(
        Organization,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    quota = models.ForeignKey(
        Quota,
        null=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="alerts",
    )
    quota_name = models.CharField(max_length=200)
    counter = models.CharField(max_length=500)
    dimensions = models.JSONField(default=dict, blank=True)
    unit = models.CharField(max_length=16, choices=UNIT_CHOICES)
    window_start = models.DateTimeField()
    used = models.BigIntegerField(help_text="Usage when the soft limit was crossed.")
    soft_limit = models.BigIntegerField()
    hard_limit = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["counter", "window_start"], name="quota_alert_once_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quota_name} soft limit at {self.created_at:%Y-%m-%d %H:%M}"


class UsageRollup(models.Model):
    """Usage of one hour per organization, project, key, provider and model.

    Project and key ids are plain integers (0 for none), so the unique constraint also
    applies to traffic without a project, and rows outlive what they name.
    """

    hour = models.DateTimeField()
    organization = models.ForeignKey(
        Organization,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    project_id = models.BigIntegerField(default=0)
    key_id = models.BigIntegerField(default=0)
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost_nano_usd = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-hour"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "hour",
                    "organization",
                    "project_id",
                    "key_id",
                    "provider",
                    "model",
                ],
                name="usage_rollup_unique_group",
            )
        ]
        indexes = [models.Index(fields=["organization", "-hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} org {self.organization_id}"
