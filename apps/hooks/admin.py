from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from apps.hooks.models import AllowedWebhookHost, Hook, RuleList
from apps.hooks.services import run_policy_test
from apps.iam.admin_scope import OrgScopedAdminMixin


class PolicyTestForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "cols": 100}))
    stage = forms.ChoiceField(
        choices=[("request", "request"), ("response", "response")]
    )
    region = forms.CharField(
        required=False, help_text="Provider region for data residency hooks."
    )


@admin.register(Hook)
class HookAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "stage",
        "priority",
        "enabled",
        "fail_open",
        "timeout_ms",
        "organization",
    ]
    list_filter = ["kind", "stage", "enabled", "fail_open", "organization"]
    search_fields = ["name", "description"]
    actions = ["test_selected_hooks"]

    def has_test_permission(self, request) -> bool:
        return self.allows(request, "test")

    @admin.action(
        description="Test the selected hooks against sample text", permissions=["test"]
    )
    def test_selected_hooks(self, request, queryset):
        hooks = list(queryset.order_by("priority", "name"))
        denied = [hook.name for hook in hooks if not self.allows(request, "test", hook)]
        if denied:
            raise PermissionDenied(
                f"Permission hooks:hook.test is denied on hook {denied[0]}."
            )

        form = PolicyTestForm(request.POST if "text" in request.POST else None)
        result = None
        if form.is_bound and form.is_valid():
            result = run_policy_test(
                hooks,
                form.cleaned_data["text"],
                stage=form.cleaned_data["stage"],
                region=form.cleaned_data["region"],
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Test hooks against sample text",
            "hooks": hooks,
            "form": form,
            "result": result,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/hooks/test_policy.html", context)


@admin.register(RuleList)
class RuleListAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    org_lookup = None
    list_display = ["name", "kind", "case_sensitive", "updated_at"]
    search_fields = ["name", "description"]


@admin.register(AllowedWebhookHost)
class AllowedWebhookHostAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    org_lookup = None
    list_display = ["host", "reason", "created_at"]
    search_fields = ["host"]
