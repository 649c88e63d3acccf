from django import forms
from django.contrib import admin, messages

from apps.compliance import services
from apps.compliance.models import (
    BodyCapture,
    ComplianceSettings,
    ControlEvent,
    HookStageRecord,
    KillSwitch,
    PassthroughFlag,
    SiemDelivery,
    SiemDestination,
)


class ControlAdmin(admin.ModelAdmin):
    """Saves go through the service, which validates and logs on and off changes."""

    def save_model(self, request, obj, form, change) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        services.save_control(obj, actor=request.user.get_username())

    def has_delete_permission(self, request, obj=None) -> bool:
        # Switching off keeps the row, so the audit log always has something to name.
        return False


@admin.register(KillSwitch)
class KillSwitchAdmin(ControlAdmin):
    list_display = ["__str__", "scope", "active", "reason", "created_by", "created_at"]
    list_filter = ["scope", "active"]
    actions = ["release"]
    readonly_fields = ["created_by"]

    @admin.action(description="Release the selected kill switches")
    def release(self, request, queryset):
        for switch in queryset.filter(active=True):
            switch.active = False
            services.save_control(switch, actor=request.user.get_username())


@admin.register(PassthroughFlag)
class PassthroughFlagAdmin(ControlAdmin):
    list_display = [
        "__str__",
        "scope",
        "bypass_hooks",
        "bypass_cache",
        "bypass_normalize",
        "starts_at",
        "expires_at",
        "ended_at",
        "created_by",
    ]
    list_filter = ["scope", "bypass_hooks", "bypass_cache", "bypass_normalize"]
    readonly_fields = ["ended_at", "created_by"]
    actions = ["switch_off"]

    @admin.action(description="Switch the selected flags off now")
    def switch_off(self, request, queryset):
        for flag in queryset.filter(ended_at__isnull=True):
            services.end_passthrough(
                flag,
                actor=request.user.get_username(),
                reason="switched off in the admin",
            )


@admin.register(ControlEvent)
class ControlEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "control_type",
        "control_id",
        "action",
        "actor",
        "reason",
    ]
    list_filter = ["control_type", "action"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ComplianceSettings)
class ComplianceSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "capture_bodies"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HookStageRecord)
class HookStageRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "request_id",
        "stage",
        "hook",
        "decision",
        "outcome",
        "duration_ms",
    ]
    list_filter = ["stage", "decision", "outcome", "kind"]
    search_fields = ["request_id", "hook"]


@admin.register(BodyCapture)
class BodyCaptureAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "request_id",
        "request_bytes",
        "response_bytes",
        "note",
    ]
    search_fields = ["request_id"]


class SiemDestinationForm(forms.ModelForm):
    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Splunk HEC token or webhook signing secret. Write-only: leave empty to keep it.",
    )

    class Meta:
        model = SiemDestination
        fields = "__all__"


@admin.register(SiemDestination)
class SiemDestinationAdmin(admin.ModelAdmin):
    form = SiemDestinationForm
    list_display = [
        "name",
        "kind",
        "enabled",
        "host",
        "port",
        "transport",
        "url",
        "organization",
    ]
    list_filter = ["kind", "enabled"]
    actions = ["requeue_dead_letters"]

    def save_model(self, request, obj, form, change) -> None:
        if form.cleaned_data.get("token"):
            services.set_destination_token(obj, form.cleaned_data["token"])
        super().save_model(request, obj, form, change)

    @admin.action(
        description="Retry the dead-lettered events of the selected destinations"
    )
    def requeue_dead_letters(self, request, queryset):
        count = services.requeue_dead(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} events queued again.", messages.SUCCESS)


@admin.register(SiemDelivery)
class SiemDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "request_id",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["state", "destination"]
    search_fields = ["request_id"]
