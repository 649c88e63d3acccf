from django.contrib import admin

from apps.sso.admin_audit import PlatformAdminMixin
from apps.sso.models import ClaimMapping, OidcIdentity


@admin.register(ClaimMapping)
class ClaimMappingAdmin(PlatformAdminMixin, admin.ModelAdmin):
    """Group claim values and the roles and groups they give on login."""

    audit_service = "sso"
    audit_type = "mapping"
    list_display = ["claim_value", "organization", "role", "project", "group"]
    list_filter = ["organization", "role"]
    search_fields = ["claim_value"]
    fields = ["claim_value", "organization", "role", "project", "group"]
    list_select_related = ["organization", "project", "group"]


@admin.register(OidcIdentity)
class OidcIdentityAdmin(admin.ModelAdmin):
    """Links from identity-provider subjects to users; delete one to unlink it."""

    list_display = ["subject", "issuer", "user", "created_at", "last_login_at"]
    search_fields = ["subject", "user__username", "user__email"]
    readonly_fields = ["issuer", "subject", "user", "created_at", "last_login_at"]
    list_select_related = ["user"]

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser
