"""Read queries and representations of SCIM users and groups."""

from typing import Any
from urllib.parse import urljoin

from django.http import HttpRequest
from django.urls import reverse
from django_scim.constants import SchemaURI

from apps.scim.models import ScimGroup, ScimUser
from apps.scim.scoping import base_location


def user_document(scim_user: ScimUser) -> dict[str, Any]:
    """Return the user's writable attributes as a document (assigned ones only)."""
    document: dict[str, Any] = {"userName": scim_user.user.username}
    optional = {
        "externalId": scim_user.external_id,
        "displayName": scim_user.display_name,
        "name": scim_user.name,
        "emails": scim_user.emails,
        "active": scim_user.active,
    }
    document.update(
        (key, value) for key, value in optional.items() if value not in (None, [], {})
    )
    return document


def group_document(scim_group: ScimGroup) -> dict[str, Any]:
    """Return the group's writable attributes as a document (assigned ones only)."""
    group = scim_group.group
    document: dict[str, Any] = {"displayName": group.name}
    if group.external_id:
        document["externalId"] = group.external_id
    members = [
        {"value": str(row.scim_id)}
        for row in ScimUser.objects.filter(
            organization_id=scim_group.organization_id, user__iam_groups=group
        ).order_by("created_at")
    ]
    if members:
        document["members"] = members
    return document


def location(request: HttpRequest, url_name: str, scim_id: object) -> str:
    """Return the absolute URL of one resource."""
    path = reverse(url_name, kwargs={"uuid": str(scim_id)})
    return urljoin(base_location(request), path)


def render_user(scim_user: ScimUser, request: HttpRequest) -> dict[str, Any]:
    """Return the full SCIM representation of a user."""
    resource: dict[str, Any] = {
        "schemas": [SchemaURI.USER],
        "id": str(scim_user.scim_id),
    }
    resource.update(user_document(scim_user))
    groups = [
        {
            "value": str(scim_group.scim_id),
            "$ref": location(request, "scim:groups", scim_group.scim_id),
            "display": scim_group.group.name,
        }
        for scim_group in ScimGroup.objects.filter(
            organization_id=scim_user.organization_id,
            group__members=scim_user.user_id,
        ).select_related("group")
    ]
    if groups:
        resource["groups"] = groups
    resource["meta"] = {
        "resourceType": "User",
        "created": scim_user.created_at.isoformat(),
        "lastModified": scim_user.updated_at.isoformat(),
        "location": location(request, "scim:users", scim_user.scim_id),
    }
    return resource


def render_group(scim_group: ScimGroup, request: HttpRequest) -> dict[str, Any]:
    """Return the full SCIM representation of a group."""
    resource: dict[str, Any] = {
        "schemas": [SchemaURI.GROUP],
        "id": str(scim_group.scim_id),
    }
    resource.update(group_document(scim_group))
    for member in resource.get("members", []):
        member["$ref"] = location(request, "scim:users", member["value"])
    resource["meta"] = {
        "resourceType": "Group",
        "created": scim_group.created_at.isoformat(),
        "lastModified": scim_group.updated_at.isoformat(),
        "location": location(request, "scim:groups", scim_group.scim_id),
    }
    return resource
