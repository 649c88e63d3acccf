"""Resource names of model rows: which service, type, organization and project.

Each model the API or the admin authorizes is registered here once, so the API, the
admin and the admin audit log name a row the same way.
"""

from dataclasses import dataclass

from django.db import models

from apps.audit.models import AuditEvent
from apps.iam import nrn
from apps.iam.models import (
    AdminAuditLog,
    Group,
    Membership,
    Policy,
    ResourceTags,
    ServiceToken,
    UserTags,
)
from apps.keys.models import VirtualKey
from apps.providers.models import Model, ProviderConnection
from apps.tenancy.models import Organization, Project


@dataclass(frozen=True)
class ResourceType:
    """The mapping of one model onto resource names and permissions."""

    service: str
    type: str
    # Lookup path from the row to its Organization and Project; None when it has none.
    org_path: str | None
    project_path: str | None = None

    def permission(self, verb: str) -> str:
        return f"{self.service}:{self.type}.{verb}"


REGISTRY: dict[type[models.Model], ResourceType] = {
    Organization: ResourceType("tenancy", "organization", ""),
    Project: ResourceType("tenancy", "project", "organization", ""),
    VirtualKey: ResourceType("keys", "key", "organization", "project"),
    # Shared platform connections, and their models, have no organization.
    ProviderConnection: ResourceType("providers", "connection", "organization"),
    Model: ResourceType("providers", "model", "organization"),
    AuditEvent: ResourceType("audit", "event", "organization", "project"),
    AdminAuditLog: ResourceType("audit", "adminlog", "organization"),
    Membership: ResourceType("iam", "membership", "organization", "project"),
    Group: ResourceType("iam", "group", "organization"),
    Policy: ResourceType("iam", "policy", "organization"),
    ServiceToken: ResourceType("iam", "token", "organization"),
    UserTags: ResourceType("iam", "user", "organization"),
    ResourceTags: ResourceType("iam", "tag", "organization"),
}


def resource_type_of(model: type[models.Model]) -> ResourceType:
    """Return the registered resource type of a model; raise KeyError if unregistered."""
    return REGISTRY[model]


def _follow(instance: models.Model, path: str | None):
    if path is None:
        return None
    if path == "":
        return instance
    return getattr(instance, path)


def organization_of(instance: models.Model) -> Organization | None:
    """Return the organization a row belongs to, or None for platform rows."""
    return _follow(instance, REGISTRY[type(instance)].org_path)


def resource_name(instance: models.Model) -> nrn.Nrn:
    """Return the resource name of a saved or unsaved row (unsaved rows get id `*`)."""
    spec = REGISTRY[type(instance)]
    organization = organization_of(instance)
    project = _follow(instance, spec.project_path)
    row_id = instance.pk if instance.pk is not None else "*"
    if isinstance(instance, UserTags):
        row_id = instance.user_id
    return nrn.build(
        spec.service,
        organization.slug if organization else "",
        spec.type,
        row_id,
        project.slug if project else "",
    )


def scope_name(
    spec: ResourceType,
    organization: Organization | None,
    project: Project | None = None,
) -> nrn.Nrn:
    """Return the wildcard name of every row of a type in an organization or project."""
    return nrn.build(
        spec.service,
        organization.slug if organization else "",
        spec.type,
        "*",
        project.slug if project else "",
    )
