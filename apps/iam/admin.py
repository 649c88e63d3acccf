from django.contrib import admin
from django.core.exceptions import PermissionDenied

from apps.iam.admin_scope import OrgScopedAdminMixin, evaluator_for
from apps.iam.errors import IamError
from apps.iam.models import AdminAuditLog, Group, Membership, Policy, ServiceToken
from apps.iam.policies import create_policy, delete_policy, update_policy
from apps.iam.services import delete_group, grant_role, revoke_role
from apps.iam.tokens import revoke_service_token

POLICY_DOCUMENT_FIELDS = (
    "name",
    "description",
    "effect",
    "principals",
    "actions",
    "resources",
    "conditions",
    "enabled",
)


def _acting(request) -> dict:
    evaluator = evaluator_for(request)
    return {"actor": request.user, "context": evaluator.context}


@admin.register(AdminAuditLog)
class AdminAuditLogAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "actor",
        "channel",
        "action",
        "resource",
        "organization",
    ]
    list_filter = ["channel", "action", "organization"]
    search_fields = ["resource", "actor", "request_id"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Role grants; adding and deleting go through the escalation check."""

    project_lookup = "project"
    # Granting a role is how a user joins an organization, so any user can be chosen.
    scoped_user_choices = False
    list_display = ["user", "organization", "role", "project", "source", "created_at"]
    list_filter = ["role", "source", "organization"]
    search_fields = ["user__username", "user__email"]
    fields = ["user", "organization", "role", "project"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def save_model(self, request, obj, form, change) -> None:
        with self.audited(request, obj, "create"):
            try:
                membership = grant_role(
                    obj.user,
                    obj.organization,
                    obj.role,
                    project=obj.project,
                    **_acting(request),
                )
            except IamError as exc:
                raise PermissionDenied(exc.message) from None
            obj.pk = membership.pk
            obj.source = membership.source

    def delete_model(self, request, obj) -> None:
        with self.audited(request, obj, "delete"):
            try:
                revoke_role(
                    obj.user,
                    obj.organization,
                    obj.role,
                    project=obj.project,
                    source=obj.source,
                    **_acting(request),
                )
            except IamError as exc:
                raise PermissionDenied(exc.message) from None


@admin.register(Policy)
class PolicyAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Policies; saving and deleting go through validation and the escalation check."""

    list_display = ["name", "organization", "effect", "enabled", "updated_at"]
    list_filter = ["effect", "enabled", "organization"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change) -> None:
        document = {name: getattr(obj, name) for name in POLICY_DOCUMENT_FIELDS}
        with self.audited(request, obj, "update" if change else "create"):
            try:
                if change:
                    stored = Policy.objects.get(pk=obj.pk)
                    update_policy(stored, document, **_acting(request))
                else:
                    obj.pk = create_policy(
                        obj.organization, document, **_acting(request)
                    ).pk
            except IamError as exc:
                raise PermissionDenied(exc.message) from None

    def delete_model(self, request, obj) -> None:
        with self.audited(request, obj, "delete"):
            try:
                delete_policy(obj, **_acting(request))
            except IamError as exc:
                raise PermissionDenied(exc.message) from None


@admin.register(Group)
class GroupAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Groups are shown here and edited through the REST API or SCIM."""

    list_display = ["name", "organization", "source", "external_id"]
    list_filter = ["source", "organization"]
    search_fields = ["name", "external_id"]
    readonly_fields = ["organization", "name", "source", "external_id", "members"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj) -> None:
        with self.audited(request, obj, "delete"):
            try:
                delete_group(obj, **_acting(request))
            except IamError as exc:
                raise PermissionDenied(exc.message) from None


@admin.register(ServiceToken)
class ServiceTokenAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Service tokens are created through the REST API, which shows the token once."""

    list_display = [
        "name",
        "prefix",
        "organization",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["organization", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = [
        "organization",
        "name",
        "scopes",
        "prefix",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    ]
    exclude = ["digest"]
    actions = ["revoke_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request, queryset) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            with self.audited(request, token, "revoke"):
                revoke_service_token(token)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).")
