from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Case, OuterRef, Subquery, When

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
from apps.iam import nrn
from apps.iam.admin_scope import OrgScopedAdminMixin
from apps.iam.resources import ResourceType
from apps.tenancy.models import Organization


def _name_in_organization(
    spec: ResourceType, organization_id: int | None, row_id: int
) -> nrn.Nrn:
    organization = (
        Organization.objects.filter(pk=organization_id).first()
        if organization_id
        else None
    )
    return nrn.build(
        spec.service, organization.slug if organization else "", spec.type, row_id
    )


class ControlAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Saves go through the service, which validates and logs on and off changes."""

    def save_model(self, request, obj, form, change) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        with self.audited(request, obj, "update" if change else "create"):
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

    @admin.action(
        description="Release the selected kill switches", permissions=["change"]
    )
    def release(self, request, queryset):
        with transaction.atomic():
            for switch in queryset.filter(active=True):
                with self.audited(request, switch, "update"):
                    switch.active = False
                    services.save_control(
                        switch,
                        actor=request.user.get_username(),
                        reason="released in the admin",
                    )


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

    @admin.action(
        description="Switch the selected flags off now", permissions=["change"]
    )
    def switch_off(self, request, queryset):
        with transaction.atomic():
            for flag in queryset.filter(ended_at__isnull=True):
                with self.audited(request, flag, "update"):
                    services.end_passthrough(
                        flag,
                        actor=request.user.get_username(),
                        reason="switched off in the admin",
                    )


@admin.register(ComplianceSettings)
class ComplianceSettingsAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    list_display = ["organization", "capture_bodies"]


class ReadOnlyAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OrganizationIdAdmin(ReadOnlyAdmin):
    """Read-only records that store their organization's id, not a foreign key."""

    org_lookup = "organization_id"
    # resource_name() cannot follow the id column that the per-row check needs.
    row_check = False

    def resource_name_of(self, obj) -> nrn.Nrn:
        return _name_in_organization(self.resource, obj.organization_id, obj.pk)


class ControlOrganizationRows(admin.ModelAdmin):
    """Annotates each control event with the organization of the control it names."""

    def get_queryset(self, request):
        def organization_of(model: type[models.Model]) -> Subquery:
            control = model.objects.filter(pk=OuterRef("control_id"))
            return Subquery(control.values("organization_id")[:1])

        return (
            super()
            .get_queryset(request)
            .annotate(
                control_organization=Case(
                    When(control_type="kill_switch", then=organization_of(KillSwitch)),
                    When(
                        control_type="passthrough",
                        then=organization_of(PassthroughFlag),
                    ),
                    output_field=models.BigIntegerField(),
                )
            )
        )


@admin.register(ControlEvent)
class ControlEventAdmin(ReadOnlyAdmin, ControlOrganizationRows):
    # An annotation that ControlOrganizationRows adds before the mixin filters rows.
    org_lookup = "control_organization"
    row_check = False
    list_display = [
        "created_at",
        "control_type",
        "control_id",
        "action",
        "actor",
        "reason",
    ]
    list_filter = ["control_type", "action"]

    def resource_name_of(self, obj) -> nrn.Nrn:
        organization_id = getattr(obj, "control_organization", None)
        return _name_in_organization(self.resource, organization_id, obj.pk)


@admin.register(HookStageRecord)
class HookStageRecordAdmin(OrganizationIdAdmin):
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
class BodyCaptureAdmin(OrganizationIdAdmin):
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
class SiemDestinationAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
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
        description="Retry the dead-lettered events of the selected destinations",
        permissions=["change"],
    )
    def requeue_dead_letters(self, request, queryset):
        destinations = list(queryset)
        for destination in destinations:
            if not self.allows(request, "update", destination):
                raise PermissionDenied(
                    "Permission compliance:siem_destination.update is denied on "
                    f"destination {destination.name}."
                )

        count = services.requeue_dead([destination.pk for destination in destinations])
        self.message_user(request, f"{count} events queued again.", messages.SUCCESS)


@admin.register(SiemDelivery)
class SiemDeliveryAdmin(ReadOnlyAdmin):
    org_lookup = "destination__organization"
    row_check = False
    list_display = [
        "request_id",
        "destination",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    # Offer only the destinations of the deliveries shown, not other organizations'.
    list_filter = ["state", ("destination", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["request_id"]
    list_select_related = ["destination"]

    def resource_name_of(self, obj) -> nrn.Nrn:
        organization_id = obj.destination.organization_id
        return _name_in_organization(self.resource, organization_id, obj.pk)
