"""django-scim2 adapters: SCIM documents in and out of Nexus users and groups.

django-scim2's views call these for every request. They hold no business rules:
input is normalized against the published schema, PATCH operations are applied
to the current document, and the result goes to apps.scim.services.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest
from django_scim import exceptions
from django_scim.adapters import SCIMGroup, SCIMUser

from apps.iam.context import context_from_request
from apps.iam.errors import IamError
from apps.scim import services
from apps.scim.documents import normalize_document, project
from apps.scim.errors import ScimError
from apps.scim.patch import apply_operations
from apps.scim.schemas import GROUP_SCHEMA, USER_SCHEMA, resource_type
from apps.scim.scoping import ORGANIZATION_ATTRIBUTE
from apps.scim.selectors import (
    group_document,
    render_group,
    render_user,
    user_document,
)

# Request attribute holding (attributes, excludedAttributes) of the request.
PROJECTION_ATTRIBUTE = "scim_projection"


@contextmanager
def scim_errors() -> Iterator[None]:
    """Turn Nexus errors into django-scim2 exceptions, which it renders as SCIM errors."""
    try:
        yield
    except ScimError as exc:
        raise exceptions.SCIMException(
            exc.message, status=exc.status, scim_type=exc.scim_type
        ) from exc
    except IamError as exc:
        raise exceptions.SCIMException(exc.message, status=exc.status) from exc


class _AdapterMixin:
    """Projection, access context and error handling shared by both adapters."""

    id_field = "scim_id"

    def __init__(self, obj: Any, request: HttpRequest | None = None) -> None:
        super().__init__(obj, request=request)
        self.document: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return str(self.obj.scim_id)

    @property
    def organization(self):
        return getattr(self.request, ORGANIZATION_ATTRIBUTE)

    @property
    def context(self):
        return context_from_request(self.request)

    def projected(self, resource: dict[str, Any], schema) -> dict[str, Any]:
        attributes, excluded = getattr(self.request, PROJECTION_ATTRIBUTE, ((), ()))
        return project(resource, schema, attributes, excluded)

    def validate_dict(self, d: Any) -> None:
        if not isinstance(d, dict):
            raise exceptions.BadRequestError(
                "The request body must be a JSON object.", scim_type="invalidSyntax"
            )


class ScimUserAdapter(_AdapterMixin, SCIMUser):
    """Users of the token's organization, stored as ScimUser rows."""

    url_name = "scim:users"
    resource_type = "User"

    @property
    def display_name(self) -> str:
        return self.obj.display_name or self.obj.user.username

    def to_dict(self) -> dict[str, Any]:
        return self.projected(render_user(self.obj, self.request), USER_SCHEMA)

    def from_dict(self, d: dict[str, Any]) -> None:
        with scim_errors():
            self.document = normalize_document(USER_SCHEMA, d)

    def save(self) -> None:
        with scim_errors():
            if self.obj.pk is None:
                self.obj = services.provision_user(
                    self.organization, self.document, context=self.context
                )
            else:
                self.obj = services.replace_user(
                    self.obj, self.document, context=self.context
                )

    def delete(self) -> None:
        with scim_errors():
            services.delete_user(self.obj, context=self.context)

    def handle_operations(self, operations: Any) -> None:
        with scim_errors():
            document = apply_operations(
                USER_SCHEMA, user_document(self.obj), operations
            )
            self.obj = services.replace_user(self.obj, document, context=self.context)

    @classmethod
    def resource_type_dict(cls, request: HttpRequest | None = None) -> dict[str, Any]:
        return resource_type(request, "User", "/Users", USER_SCHEMA)


class ScimGroupAdapter(_AdapterMixin, SCIMGroup):
    """Groups of the token's organization: IAM groups with a ScimGroup row."""

    url_name = "scim:groups"
    resource_type = "Group"

    @property
    def display_name(self) -> str:
        return self.obj.group.name

    def to_dict(self) -> dict[str, Any]:
        return self.projected(render_group(self.obj, self.request), GROUP_SCHEMA)

    def from_dict(self, d: dict[str, Any]) -> None:
        with scim_errors():
            self.document = normalize_document(GROUP_SCHEMA, d)

    def save(self) -> None:
        with scim_errors():
            if self.obj.pk is None:
                self.obj = services.create_group(
                    self.organization, self.document, context=self.context
                )
            else:
                self.obj = services.replace_group(
                    self.obj, self.document, context=self.context
                )

    def delete(self) -> None:
        with scim_errors():
            services.delete_group(self.obj, context=self.context)

    def handle_operations(self, operations: Any) -> None:
        with scim_errors():
            document = apply_operations(
                GROUP_SCHEMA, group_document(self.obj), operations
            )
            self.obj = services.replace_group(self.obj, document, context=self.context)

    @classmethod
    def resource_type_dict(cls, request: HttpRequest | None = None) -> dict[str, Any]:
        return resource_type(request, "Group", "/Groups", GROUP_SCHEMA)
