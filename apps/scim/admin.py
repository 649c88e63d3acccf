from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.scim.models import ScimGroup, ScimToken, ScimUser
from apps.scim.tokens import issue_scim_token, revoke_scim_token
from apps.sso.admin_audit import PlatformAdminMixin

# Request attribute holding the plaintext of a token created by this request.
_PLAINTEXT_ATTRIBUTE = "_nexus_scim_plaintext"


@admin.register(ScimToken)
class ScimTokenAdmin(PlatformAdminMixin, admin.ModelAdmin):
    """SCIM bearer tokens; a new token is shown once, on the page after adding it."""

    audit_service = "scim"
    audit_type = "token"
    list_display = [
        "name",
        "prefix",
        "organization",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["organization", "revoked_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke_selected"]

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return ["organization", "name"]
        return [
            "organization",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        return self.get_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if change:
            return
        with transaction.atomic():
            issued = issue_scim_token(
                form.cleaned_data["organization"],
                name=form.cleaned_data["name"],
                created_by=request.user,
            )
            obj.pk = issued.token.pk
            self.log_change_of(request, issued.token, "create", None)
        setattr(request, _PLAINTEXT_ATTRIBUTE, issued.plaintext)

    def response_add(self, request: HttpRequest, obj, post_url_continue=None):
        plaintext = getattr(request, _PLAINTEXT_ATTRIBUTE, None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        # Rendered directly instead of redirecting, so the token never lands in a
        # message cookie or the session.
        token = ScimToken.objects.get(pk=obj.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "SCIM token created",
            "token": token,
            "plaintext": plaintext,
            "opts": self.model._meta,
        }
        # Admin views send no-store, so the page is not cached either.
        return TemplateResponse(request, "admin/scim/token_created.html", context)

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset) -> HttpResponse | None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            with transaction.atomic():
                revoke_scim_token(token)
                self.log_change_of(request, token, "revoke", None)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).")
        return None


class _ReadOnlyScimAdmin(PlatformAdminMixin, admin.ModelAdmin):
    """Rows the identity provider owns: shown, never edited here."""

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ScimUser)
class ScimUserAdmin(_ReadOnlyScimAdmin):
    list_display = ["user", "organization", "external_id", "active", "updated_at"]
    list_filter = ["organization", "active"]
    search_fields = ["user__username", "user__email", "external_id"]
    list_select_related = ["user", "organization"]


@admin.register(ScimGroup)
class ScimGroupAdmin(_ReadOnlyScimAdmin):
    list_display = ["group", "organization", "updated_at"]
    list_filter = ["organization"]
    search_fields = ["group__name", "group__external_id"]
    list_select_related = ["group", "organization"]
