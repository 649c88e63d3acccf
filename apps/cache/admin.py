"""Operator screens: cache policies, semantic indexes, purges and quarantine."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest

from apps.cache import services
from apps.cache.models import CachePolicy, CachePurge, QuarantinedEntry, SemanticIndex
from apps.iam.admin_scope import OrgScopedAdminMixin, evaluator_for
from apps.iam.resources import resource_type_of, scope_name
from apps.iam.scoping import member_organizations
from apps.tenancy.models import Organization


def _may_purge(request: HttpRequest, organization: Organization | None) -> bool:
    spec = resource_type_of(CachePurge)
    name = scope_name(spec, organization)
    return evaluator_for(request).authorize(spec.permission("create"), name).allowed


@admin.register(CachePolicy)
class CachePolicyAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    project_lookup = "project"
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

    def has_purge_permission(self, request: HttpRequest) -> bool:
        # A purge of no organization (a global policy's) purges every organization.
        return _may_purge(request, None) or any(
            _may_purge(request, organization)
            for organization in member_organizations(evaluator_for(request))
        )

    @admin.action(
        description="Purge cached responses of the selected policies' orgs",
        permissions=["purge"],
    )
    def purge_organizations(self, request, queryset) -> None:
        organizations = {policy.organization for policy in queryset}
        for organization in organizations:
            if not _may_purge(request, organization):
                raise PermissionDenied(
                    "Permission cache:purge.create is denied on "
                    f"{organization or 'every organization'}."
                )

        # The same write as adding a purge in its own admin page, audited the same.
        with transaction.atomic():
            for organization in organizations:
                purge = CachePurge(
                    organization=organization,
                    requested_by=request.user,
                    reason="admin action on policies",
                )
                with self.audited(request, purge, "create"):
                    purge.save()
        self.message_user(
            request,
            f"Purged the cache of {len(organizations)} scope(s).",
            messages.INFO,
        )


@admin.register(SemanticIndex)
class SemanticIndexAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    # Indexes are shared by the policies of every organization, so only superusers
    # read and change them.
    org_lookup = None
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

    @admin.action(
        description="Drop the selected indexes (delete every vector)",
        permissions=["change"],
    )
    def drop_indexes(self, request, queryset) -> None:
        indexes = list(queryset)
        with transaction.atomic():
            for index in indexes:
                with self.audited(request, index, "update"):
                    services.drop_semantic_index(index)
        self.message_user(request, f"Dropped {len(indexes)} index(es).", messages.INFO)


@admin.register(CachePurge)
class CachePurgeAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
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
class QuarantinedEntryAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
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

    @admin.action(
        description="Release the selected entries (serve them again)",
        permissions=["change"],
    )
    def release(self, request, queryset) -> None:
        entries = list(queryset)
        with transaction.atomic():
            for entry in entries:
                with self.audited(request, entry, "update"):
                    services.release_entry(entry)
        self.message_user(
            request, f"Released {len(entries)} entry(ies).", messages.INFO
        )
