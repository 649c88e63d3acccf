from django.contrib import admin

from apps.iam.admin_scope import OrgScopedAdminMixin, OrgScopedInlineMixin
from apps.tenancy.models import Organization, Project


class ProjectInline(OrgScopedInlineMixin, admin.TabularInline):
    model = Project
    extra = 0
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    org_lookup = ""
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ProjectInline]


@admin.register(Project)
class ProjectAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    project_lookup = ""
    list_display = ["name", "organization", "slug", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
