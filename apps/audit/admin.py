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
        "latency",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]
    list_filter = ["status_code", "ingress", "provider", "organization", "stream"]
    search_fields = ["request_id", "key_prefix", "requested_model", "upstream_model"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    readonly_fields = ["latency", "time_to_first_byte"]

    # Latencies are stored unrounded, so both pages show them to 0.01 ms.
    @admin.display(description="latency (ms)", ordering="latency_ms")
    def latency(self, obj: AuditEvent) -> str:
        return f"{obj.latency_ms:.2f}"

    @admin.display(description="time to first byte (ms)", ordering="ttfb_ms")
    def time_to_first_byte(self, obj: AuditEvent) -> str:
        if obj.ttfb_ms is None:
            return self.get_empty_value_display()
        return f"{obj.ttfb_ms:.2f}"

    def get_fields(self, request, obj=None) -> list[str]:
        """List the event's fields with the rounded latencies in place of the raw ones."""
        rounded = {"latency_ms": "latency", "ttfb_ms": "time_to_first_byte"}
        fields = super().get_fields(request, obj)
        return [
            rounded.get(name, name)
            for name in fields
            if name not in self.readonly_fields
        ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
