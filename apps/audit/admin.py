from django.contrib import admin

from apps.audit.models import AuditEvent
from apps.iam.admin_scope import OrgScopedAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    project_lookup = "project"
    list_display = [
        "created_at",
        "request_id",
        "organization",
        "key_prefix",
        "ingress",
        "requested_model",
        "provider",
        "status_code",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]
    list_filter = ["status_code", "ingress", "provider", "organization", "stream"]
    search_fields = ["request_id", "key_prefix", "requested_model", "upstream_model"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
