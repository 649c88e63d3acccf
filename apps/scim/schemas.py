"""The SCIM schemas, resource types and service provider configuration Nexus serves.

The User and Group schemas list exactly the attributes the endpoint stores and
returns (RFC 7643, sections 4 and 7), so a client that reads /Schemas knows what
survives a round trip. The schemas of the discovery resources themselves
(ResourceType, ServiceProviderConfig, Schema) come from django-scim2's copies of
RFC 7643, section 8.7.2.
"""

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import django_scim
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django_scim.constants import SchemaURI

from apps.scim.scoping import base_location


@dataclass(frozen=True)
class Attribute:
    """One attribute definition of a schema (RFC 7643, section 7)."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    sub_attributes: tuple["Attribute", ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    @property
    def read_only(self) -> bool:
        return self.mutability == "readOnly"

    def sub_attribute(self, name: str) -> "Attribute | None":
        """Return the sub-attribute named name, compared case-insensitively."""
        return _find(self.sub_attributes, name)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.sub_attributes:
            data["subAttributes"] = [sub.to_dict() for sub in self.sub_attributes]
        if self.canonical_values:
            data["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            data["referenceTypes"] = list(self.reference_types)
        return data


def _find(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    lowered = name.lower()
    for attribute in attributes:
        if attribute.name.lower() == lowered:
            return attribute
    return None


@dataclass(frozen=True)
class ResourceSchema:
    """A resource schema and the common attributes every resource of it has."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    common: tuple[Attribute, ...] = field(default=())

    def attribute(self, name: str) -> Attribute | None:
        """Return the schema or common attribute named name (case-insensitive)."""
        return _find(self.attributes, name) or _find(self.common, name)

    def to_dict(self, request: HttpRequest) -> dict[str, Any]:
        return schema_resource(
            {
                "id": self.id,
                "name": self.name,
                "description": self.description,
                "attributes": [attribute.to_dict() for attribute in self.attributes],
            },
            request,
        )


# RFC 7643, section 3.1: id and meta are the server's; externalId is the client's.
COMMON_ATTRIBUTES = (
    Attribute(
        "id",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
        description="The service provider's identifier of the resource.",
    ),
    Attribute(
        "externalId",
        case_exact=True,
        description="The provisioning client's identifier of the resource.",
    ),
)

USER_SCHEMA = ResourceSchema(
    id=SchemaURI.USER,
    name="User",
    description="A person who signs in to Nexus.",
    common=COMMON_ATTRIBUTES,
    attributes=(
        Attribute(
            "userName",
            required=True,
            uniqueness="server",
            description="Unique identifier of the user, also their Nexus username.",
        ),
        Attribute(
            "name",
            type="complex",
            description="The components of the user's name.",
            sub_attributes=(
                Attribute("formatted", description="The full name."),
                Attribute("familyName", description="The family name."),
                Attribute("givenName", description="The given name."),
            ),
        ),
        Attribute("displayName", description="The name shown for the user."),
        Attribute(
            "emails",
            type="complex",
            multi_valued=True,
            description="Email addresses; the primary one becomes the Nexus email.",
            sub_attributes=(
                Attribute("value", description="The email address."),
                Attribute(
                    "type",
                    description="The kind of address.",
                    canonical_values=("work", "home", "other"),
                ),
                Attribute(
                    "primary",
                    type="boolean",
                    description="Whether this is the primary address.",
                ),
            ),
        ),
        Attribute(
            "active",
            type="boolean",
            description="False deactivates the user: their sessions end and their "
            "personal virtual keys are revoked.",
        ),
        Attribute(
            "groups",
            type="complex",
            multi_valued=True,
            mutability="readOnly",
            description="The SCIM groups the user belongs to.",
            sub_attributes=(
                Attribute(
                    "value", mutability="readOnly", description="The group's id."
                ),
                Attribute(
                    "$ref",
                    type="reference",
                    mutability="readOnly",
                    reference_types=("Group",),
                    description="The group's URI.",
                ),
                Attribute(
                    "display",
                    mutability="readOnly",
                    description="The group's displayName.",
                ),
            ),
        ),
    ),
)

GROUP_SCHEMA = ResourceSchema(
    id=SchemaURI.GROUP,
    name="Group",
    description="A set of users; members hold every role the group grants in Nexus.",
    common=COMMON_ATTRIBUTES,
    attributes=(
        Attribute(
            "displayName",
            required=True,
            uniqueness="server",
            description="The group's name, unique in the organization.",
        ),
        Attribute(
            "members",
            type="complex",
            multi_valued=True,
            description="The users in the group.",
            sub_attributes=(
                Attribute(
                    "value",
                    case_exact=True,
                    mutability="immutable",
                    description="The member's user id.",
                ),
                Attribute(
                    "$ref",
                    type="reference",
                    mutability="immutable",
                    reference_types=("User",),
                    description="The member's URI.",
                ),
            ),
        ),
    ),
)

_RFC_SCHEMA_DIR = Path(django_scim.__file__).parent / "schemas" / "core"
# django-scim2's copy names the ServiceProviderConfig schema with spaces; RFC 7643,
# section 8.7.2, names it "ServiceProviderConfig".
_DISCOVERY_SCHEMAS = {
    "ResourceType.json": "ResourceType",
    "ServiceProviderConfig.json": "ServiceProviderConfig",
    "Schema.json": "Schema",
}


def _load_discovery_schemas() -> list[dict[str, Any]]:
    schemas = []
    for filename, name in _DISCOVERY_SCHEMAS.items():
        data = json.loads((_RFC_SCHEMA_DIR / filename).read_text(encoding="utf-8"))
        data["name"] = name
        schemas.append(data)
    return schemas


DISCOVERY_SCHEMAS = _load_discovery_schemas()


def schema_resource(data: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    """Return a schema definition as a Schema resource with schemas and meta."""
    resource = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"]}
    resource.update(copy.deepcopy(data))
    path = reverse("scim:schemas", kwargs={"uuid": data["id"]})
    resource["meta"] = {
        "resourceType": "Schema",
        "location": urljoin(base_location(request), path),
    }
    return resource


def all_schemas(request: HttpRequest | None = None) -> list[dict[str, Any]]:
    """Return every schema the endpoint publishes, as Schema resources.

    Without a request the definitions come without meta: django-scim2 calls this
    once while its views module loads, before URLs can be reversed.
    """
    if request is None:
        return [
            {"id": schema.id, "name": schema.name}
            for schema in (USER_SCHEMA, GROUP_SCHEMA)
        ] + copy.deepcopy(DISCOVERY_SCHEMAS)
    published = [USER_SCHEMA.to_dict(request), GROUP_SCHEMA.to_dict(request)]
    published.extend(schema_resource(data, request) for data in DISCOVERY_SCHEMAS)
    return published


class ServiceProviderConfig:
    """The /ServiceProviderConfig resource (RFC 7643, section 5)."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        self.request = request

    def to_dict(self) -> dict[str, Any]:
        location = urljoin(
            base_location(self.request), reverse("scim:service-provider-config")
        )
        return {
            "schemas": [SchemaURI.SERVICE_PROVIDER_CONFIG],
            "documentationUri": None,
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {
                "supported": True,
                "maxResults": settings.NEXUS_SCIM_MAX_RESULTS,
            },
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": settings.SCIM_SERVICE_PROVIDER[
                "AUTHENTICATION_SCHEMES"
            ],
            "meta": {"resourceType": "ServiceProviderConfig", "location": location},
        }


def resource_type(
    request: HttpRequest, name: str, endpoint: str, schema: ResourceSchema
) -> dict[str, Any]:
    """Return one ResourceType resource (RFC 7643, section 6)."""
    path = reverse("scim:resource-types", kwargs={"uuid": name})
    return {
        "schemas": [SchemaURI.RESOURCE_TYPE],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": schema.description,
        "schema": schema.id,
        "meta": {
            "resourceType": "ResourceType",
            "location": urljoin(base_location(request), path),
        },
    }


def all_resource_types(request: HttpRequest) -> list[dict[str, Any]]:
    """Return the User and Group resource types."""
    return [
        resource_type(request, "User", "/Users", USER_SCHEMA),
        resource_type(request, "Group", "/Groups", GROUP_SCHEMA),
    ]
