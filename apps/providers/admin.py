from django import forms
from django.contrib import admin

from apps.iam.admin_scope import OrgScopedAdminMixin
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
        fields = ["name", "provider_type", "base_url", "region", "options", "enabled"]


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    org_lookup = None
    form = ProviderConnectionForm
    list_display = [
        "name",
        "provider_type",
        "base_url",
        "region",
        "enabled",
        "has_credential",
    ]
    list_filter = ["provider_type", "enabled"]
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
class ModelAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    org_lookup = None
    list_display = [
        "name",
        "kind",
        "connection",
        "upstream_model",
        "input_price",
        "output_price",
        "enabled",
    ]
    list_filter = ["kind", "connection", "enabled"]
    search_fields = ["name", "upstream_model"]
