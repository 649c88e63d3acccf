from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from apps.iam.admin_scope import OrgScopedAdminMixin
from apps.keys.models import VirtualKey
from apps.keys.services import (
    assign_new_secret,
    check_allowed_models,
    check_expires_at,
    revoke_key,
)


class VirtualKeyForm(forms.ModelForm):
    """Check allowed models and the expiry time as the REST API does."""

    class Meta:
        model = VirtualKey
        fields = ["allowed_models", "expires_at"]

    def clean_allowed_models(self):
        stored = self.instance.allowed_models if self.instance.pk else ()
        return check_allowed_models(
            self.cleaned_data.get("allowed_models"), stored=stored or ()
        )

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        # The admin widget drops microseconds, so comparing with the stored value
        # would find a change where the operator made none.
        if self.instance.pk and "expires_at" not in self.changed_data:
            return value
        check_expires_at(value)
        return value


@admin.register(VirtualKey)
class VirtualKeyAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    form = VirtualKeyForm
    project_lookup = "project"
    list_display = [
        "name",
        "prefix",
        "organization",
        "project",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["organization", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_at", "revoked_at"]
    fields = [
        "organization",
        "project",
        "owner",
        "name",
        "allowed_models",
        "expires_at",
        "prefix",
        "revoked_at",
        "last_used_at",
        "created_at",
    ]
    actions = ["revoke_selected"]

    def save_model(self, request, obj, form, change) -> None:
        plaintext = None if change else assign_new_secret(obj)
        super().save_model(request, obj, form, change)
        if plaintext:
            messages.warning(
                request,
                f"Key created: {plaintext} . Copy it now; it is stored only as a digest "
                "and cannot be shown again.",
            )

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            with self.audited(request, key, "revoke"):
                revoke_key(key)
            count += 1
        self.message_user(
            request, f"Revoked {count} key(s) at {timezone.now():%Y-%m-%d %H:%M} UTC."
        )
