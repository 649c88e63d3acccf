"""Admin pages for identity-provider settings: superusers only, every change logged.

Claim mappings and SCIM tokens decide who gets which role in an organization, so
editing them is as strong as granting any role there. Only superusers see these
pages, and each saved or deleted row is written to the admin audit log.
"""

from django.db import models, transaction
from django.http import HttpRequest

from apps.iam import nrn
from apps.iam.changelog import record_change, snapshot
from apps.iam.context import context_from_request
from apps.iam.models import AdminAuditLog


def _is_superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


class PlatformAdminMixin:
    """Limit a ModelAdmin to superusers and log its changes; goes first in the bases.

    Subclasses set audit_service and audit_type, which name rows in the log as
    nrn:nexus:<service>:<org>:<type>/<id>. Rows need an `organization` field.
    """

    audit_service = ""
    audit_type = ""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _is_superuser(request)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return _is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return _is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return _is_superuser(request)

    def resource_of(self, obj: models.Model) -> nrn.Nrn:
        return nrn.build(
            self.audit_service, obj.organization.slug, self.audit_type, obj.pk
        )

    def log_change_of(
        self,
        request: HttpRequest,
        obj: models.Model,
        verb: str,
        before: dict | None,
    ) -> None:
        """Write one admin audit log row for a change to obj."""
        record_change(
            actor=request.user,
            action=f"{self.audit_service}:{self.audit_type}.{verb}",
            resource=self.resource_of(obj),
            organization_id=obj.organization_id,
            before=before,
            after=snapshot(obj) if verb != "delete" else None,
            channel=AdminAuditLog.CHANNEL_ADMIN,
            context=context_from_request(request),
        )

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        stored = (
            type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        )
        before = snapshot(stored) if stored is not None else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self.log_change_of(request, obj, "update" if change else "create", before)

    def delete_model(self, request: HttpRequest, obj) -> None:
        before = snapshot(obj)
        pk = obj.pk
        with transaction.atomic():
            super().delete_model(request, obj)
            # Deleting clears pk; the log names the row that was deleted.
            obj.pk = pk
            self.log_change_of(request, obj, "delete", before)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
