"""Operator screens: cache policies, semantic indexes, purges and quarantine."""

from django.contrib import admin, messages

from apps.cache import services
from apps.cache.models import CachePolicy, CachePurge, QuarantinedEntry, SemanticIndex


@admin.register(CachePolicy)
class CachePolicyAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "organization",
        "enabled",
        "ttl_seconds",
        "coalesce",
        "share",
        "semantic_index",
    )
    list_filter = ("enabled", "coalesce", "share", "semantic_index")
    raw_id_fields = ("organization", "project", "key")
    actions = ["purge_organizations"]

    @admin.action(description="Purge cached responses of the selected policies' orgs")
    def purge_organizations(self, request, queryset) -> None:
        organizations = {policy.organization for policy in queryset}
        for organization in organizations:
            services.purge_cache(
                organization, actor=request.user, reason="admin action on policies"
            )
        self.message_user(
            request,
            f"Purged the cache of {len(organizations)} scope(s).",
            messages.INFO,
        )


@admin.register(SemanticIndex)
class SemanticIndexAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "backend",
        "embedding_model",
        "dimensions",
        "threshold",
        "ttl_seconds",
        "generation",
    )
    readonly_fields = ("generation", "created_at", "updated_at")
    actions = ["drop_indexes"]

    @admin.action(description="Drop the selected indexes (delete every vector)")
    def drop_indexes(self, request, queryset) -> None:
        for index in queryset:
            services.drop_semantic_index(index)
        self.message_user(
            request, f"Dropped {queryset.count()} index(es).", messages.INFO
        )


@admin.register(CachePurge)
class CachePurgeAdmin(admin.ModelAdmin):
    """Adding a row purges: the organization's cache, or every cache when empty."""

    list_display = ("__str__", "requested_by", "created_at", "reason")
    readonly_fields = ("requested_by", "created_at")
    raw_id_fields = ("organization",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        obj.requested_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(QuarantinedEntry)
class QuarantinedEntryAdmin(admin.ModelAdmin):
    """Adding a row reports a bad cached response by its x-nexus-cache-entry id."""

    list_display = (
        "entry_id",
        "organization",
        "reported_by",
        "created_at",
        "released_at",
    )
    list_filter = ("released_at",)
    search_fields = ("entry_id", "reason")
    readonly_fields = ("reported_by", "created_at", "released_at")
    raw_id_fields = ("organization",)
    actions = ["release"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.reported_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Release the selected entries (serve them again)")
    def release(self, request, queryset) -> None:
        for entry in queryset:
            services.release_entry(entry)
        self.message_user(
            request, f"Released {queryset.count()} entry(ies).", messages.INFO
        )
