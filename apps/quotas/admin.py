import logging

import redis
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from apps.iam.admin_scope import OrgScopedAdminMixin
from apps.quotas.models import Quota, QuotaAlert, QuotaSettings, UsageRollup
from apps.quotas.selectors import list_quota_usage
from apps.quotas.services import save_quota
from nexus.engine.quotas.messages import format_amount
from nexus.engine.quotas.rules import Unit

logger = logging.getLogger(__name__)

# Counters shown on a quota's page; a per-key quota may have thousands.
USAGE_ROWS = 50


@admin.register(Quota)
class QuotaAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    project_lookup = "project"
    list_display = [
        "name",
        "organization",
        "axis",
        "unit",
        "window",
        "window_size",
        "soft_limit",
        "hard_limit",
        "enabled",
    ]
    list_filter = ["enabled", "unit", "window", "axis", "organization"]
    search_fields = ["name", "model"]
    list_select_related = ["organization"]
    readonly_fields = ["uid", "current_usage", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["organization", "name", "enabled", "uid"]}),
        (
            "What is counted",
            {"fields": ["axis", "unit", "project", "key", "provider", "model"]},
        ),
        ("Window", {"fields": ["window", "window_size", "timezone"]}),
        ("Limits", {"fields": ["soft_limit", "hard_limit"]}),
        ("Usage", {"fields": ["current_usage"]}),
    ]

    def save_model(self, request, obj: Quota, form, change: bool) -> None:
        with self.audited(request, obj, "update" if change else "create"):
            save_quota(obj)

    @admin.display(description="Current usage and remaining budget")
    def current_usage(self, obj: Quota) -> str:
        if obj.pk is None:
            return "-"
        try:
            usages = list_quota_usage(obj)[:USAGE_ROWS]
        except (redis.RedisError, OSError) as exc:
            logger.warning("quota usage could not be read from Redis: %s", exc)
            return f"Usage is unavailable: Redis failed with {type(exc).__name__}."
        if not usages:
            return "No usage in the current window."
        unit = Unit(obj.unit)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    ", ".join(
                        f"{name}={value}" for name, value in usage.dimensions.items()
                    )
                    or "all",
                    format_amount(unit, usage.used),
                    "-"
                    if usage.remaining is None
                    else format_amount(unit, usage.remaining),
                )
                for usage in usages
            ),
        )
        return format_html(
            "<table><tr><th>Counter</th><th>Used</th><th>Remaining</th></tr>{}</table>",
            rows,
        )


@admin.register(QuotaSettings)
class QuotaSettingsAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "organization",
        "fail_mode",
        "default_output_tokens",
        "alert_webhook_url",
    ]
    list_filter = ["fail_mode"]


class ReadOnlyAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(QuotaAlert)
class QuotaAlertAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "organization",
        "quota_name",
        "unit",
        "used",
        "soft_limit",
        "window_start",
        "status",
        "attempts",
    ]
    list_filter = ["status", "unit", "organization"]
    search_fields = ["quota_name", "request_id", "counter"]
    date_hierarchy = "created_at"


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = [
        "hour",
        "organization",
        "project_id",
        "key_id",
        "provider",
        "model",
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]
    list_filter = ["organization", "provider", "model"]
    date_hierarchy = "hour"

    @admin.display(description="Cost (USD)")
    def cost_usd(self, obj: UsageRollup) -> str:
        return format_amount(Unit.USD, obj.cost_nano_usd)
