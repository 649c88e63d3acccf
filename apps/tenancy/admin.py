from django.contrib import admin

from apps.tenancy.models import Organization, Project


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ProjectInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "slug", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
