from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.iam.admin_scope import OrgScopedAdminMixin, evaluator_for
from apps.iam.resources import scope_name
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import set_credential


class ProviderConnectionForm(forms.ModelForm):
    credential = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="API key or credential JSON. Write-only: leave empty to keep the stored one.",
    )
    clear_credential = forms.BooleanField(
        required=False, help_text="Remove the stored credential."
    )

    class Meta:
        model = ProviderConnection
        fields = [
            "organization",
            "name",
            "provider_type",
            "base_url",
            "region",
            "options",
            "enabled",
        ]


class SharedRowsAdminMixin(OrgScopedAdminMixin):
    """Also list the shared platform rows (no organization) to staff who may read them.

    The evaluator lets superusers alone change shared rows.
    """

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        permission = self.resource.permission("read")
        name = scope_name(self.resource, None)
        if not evaluator_for(request).authorize(permission, name).allowed:
            return qs
        shared = admin.ModelAdmin.get_queryset(self, request).filter(
            **{f"{self.org_lookup}__isnull": True}
        )
        return qs | shared


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(SharedRowsAdminMixin, admin.ModelAdmin):
    form = ProviderConnectionForm
    list_display = [
        "name",
        "organization",
        "provider_type",
        "base_url",
        "region",
        "enabled",
        "has_credential",
    ]
    list_filter = ["organization", "provider_type", "enabled"]
    search_fields = ["name"]

    @admin.display(boolean=True, description="credential set")
    def has_credential(self, obj: ProviderConnection) -> bool:
        return bool(obj.credential_ciphertext)

    def save_model(self, request, obj, form, change) -> None:
        if form.cleaned_data.get("clear_credential"):
            set_credential(obj, "")
        elif form.cleaned_data.get("credential"):
            set_credential(obj, form.cleaned_data["credential"])
        super().save_model(request, obj, form, change)


@admin.register(Model)
class ModelAdmin(SharedRowsAdminMixin, admin.ModelAdmin):
    org_lookup = "connection__organization"
    list_display = [
        "name",
        "kind",
        "connection",
        "upstream_model",
        "input_price",
        "output_price",
        "enabled",
    ]
    # Only the connections of listed models, so other organizations' stay hidden.
    list_filter = [
        "kind",
        ("connection", admin.RelatedOnlyFieldListFilter),
        "enabled",
    ]
    search_fields = ["name", "upstream_model"]
