"""OpenAPI descriptions that drf-spectacular cannot infer.

Besides the service-token security scheme, this module documents the error responses
of every operation. drf-spectacular infers only the success response of a view.
Every error goes through one exception handler (apps.api.exceptions) and has one
body, so the postprocessing hook below adds those responses once, from rules about
the operation and its view, instead of on each view.
"""

from copy import deepcopy
from typing import Any

from django.db import models
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from rest_framework.pagination import CursorPagination

ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The body of every error response of the control-plane API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "pattern": "^[a-z][a-z0-9_]*$",
                    "description": (
                        "Stable snake_case error code, such as invalid, "
                        "not_authenticated, authentication_failed, permission_denied, "
                        "privilege_escalation, not_found, conflict, in_use or "
                        "last_owner."
                    ),
                    "example": "not_found",
                },
                "message": {
                    "type": "string",
                    "description": "One sentence naming what failed.",
                },
                "details": {
                    "description": (
                        "For code invalid: the field errors, an object of field name "
                        "to a list of messages (nested objects for nested fields). "
                        "For other codes: an object naming the offending parameter "
                        "(param), or null."
                    ),
                    "anyOf": [
                        {
                            "type": "object",
                            "additionalProperties": {},
                            "nullable": True,
                        },
                        {"type": "array", "items": {}},
                    ],
                },
            },
            "required": ["code", "message", "details"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

# Status code to (component name, description) of the shared error responses.
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "The request body or a query parameter is invalid, or a list got a query "
        "parameter it does not read (code invalid, with the field errors in "
        "details); or the body is malformed.",
    ),
    "401": (
        "Unauthorized",
        "No credentials were sent, or the service token is invalid, expired or "
        "revoked.",
    ),
    "403": (
        "Forbidden",
        "The caller lacks the permission the operation needs, the change would grant "
        "more than the caller holds, or the session's CSRF token is missing.",
    ),
    "404": (
        "NotFound",
        "The row, or an organization, project or key named in the request, does not "
        "exist or is not visible to the caller; also an invalid page cursor.",
    ),
    "409": (
        "Conflict",
        "The change conflicts with existing rows: a unique name is taken, the row is "
        "still used by other rows, or an organization would lose its last owner.",
    ),
}

HTTP_METHODS = frozenset(
    {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}
)
WRITE_ACTIONS = frozenset({"create", "update", "partial_update"})
# Role changes that the IAM services reject with LastOwnerError (409) when they
# would leave an organization without an owner, by model label.
LAST_OWNER_ACTIONS: dict[str, frozenset[str]] = {
    "iam.membership": frozenset({"destroy"}),
    "iam.group": frozenset({"update", "partial_update", "destroy"}),
}


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service token (nst_...) created under /api/v1/service-tokens/.",
        }


def add_error_responses(
    result: dict[str, Any], generator: SchemaGenerator, request: Any, public: bool
) -> dict[str, Any]:
    """Add the Error schema and each operation's error responses to the schema.

    Every operation documents 401 and 403, and operations that take a body or query
    parameters document 400. Detail routes, lists with an organization filter and
    organization-scoped or cursor-paginated collections document 404. Writes that a
    database constraint or the last-owner rule can reject document 409. The API does
    not throttle, so no operation documents 429.
    """
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = deepcopy(ERROR_SCHEMA)
    shared = components.setdefault("responses", {})
    for name, description in ERROR_RESPONSES.values():
        shared[name] = {
            "description": description,
            "content": {"application/json": {"schema": dict(ERROR_REF)}},
        }

    views = _views_by_operation(generator)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            # A path item may also hold parameters shared by its operations.
            if method.upper() not in HTTP_METHODS:
                continue
            view = views.get((path, method.upper()))
            statuses = _error_statuses(operation, view)
            _add_responses(operation, statuses)
    return result


def _error_statuses(operation: dict[str, Any], view: Any) -> list[str]:
    """Return the error status codes that the operation can return."""
    parameters = operation.get("parameters", [])
    statuses = ["401", "403"]
    # Lists reject unknown query parameters with 400, so a list with only limit and
    # offset documents 400 too.
    if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
        statuses.append("400")
    if _names_rows(parameters) or _looks_up_rows(view):
        statuses.append("404")
    if _can_conflict(view):
        statuses.append("409")
    return sorted(statuses)


def _add_responses(operation: dict[str, Any], statuses: list[str]) -> None:
    responses = operation.setdefault("responses", {})
    for status_code in statuses:
        name = ERROR_RESPONSES[status_code][0]
        responses.setdefault(status_code, {"$ref": f"#/components/responses/{name}"})
    operation["responses"] = dict(sorted(responses.items()))


def _views_by_operation(generator: SchemaGenerator) -> dict[tuple[str, str], Any]:
    # parse() has filled generator.endpoints by the time postprocessing hooks run.
    views = {}
    for path, _, method, callback in generator.endpoints or []:
        view = generator.create_view(callback, method)
        views[(generator.coerce_path(path, method, view), method.upper())] = view
    return views


def _names_rows(parameters: list[dict[str, Any]]) -> bool:
    """Return whether a path or query parameter names a row that may not exist.

    Every path parameter is a lookup, and an `organization` query filter returns
    404 for an unknown organization on every list that has one.
    """
    return any(
        parameter.get("in") == "path"
        or (parameter.get("in") == "query" and parameter.get("name") == "organization")
        for parameter in parameters
    )


def _looks_up_rows(view: Any) -> bool:
    """Return whether the view resolves rows that the request names.

    An organization-scoped collection returns 404 for an organization, project or
    key of a foreign organization in its filter or body, and a cursor-paginated
    list returns 404 for a forged cursor.
    """
    lookups = getattr(view, "lookups", None)
    if lookups is not None and lookups.org:
        return True
    pagination = getattr(view, "pagination_class", None)
    return (
        getattr(view, "action", None) == "list"
        and pagination is not None
        and issubclass(pagination, CursorPagination)
    )


def _can_conflict(view: Any) -> bool:
    action = getattr(view, "action", None)
    queryset = getattr(view, "queryset", None)
    if queryset is None or action is None:
        return False
    model = queryset.model
    if action in LAST_OWNER_ACTIONS.get(model._meta.label_lower, ()):
        return True
    if action in WRITE_ACTIONS:
        return _has_unique_constraint(model)
    if action == "destroy":
        return _delete_is_blocked(model, set())
    return False


def _has_unique_constraint(model: type[models.Model]) -> bool:
    meta = model._meta
    return (
        any(field.unique and not field.primary_key for field in meta.concrete_fields)
        or bool(meta.unique_together)
        or any(isinstance(c, models.UniqueConstraint) for c in meta.constraints)
    )


def _delete_is_blocked(model: type[models.Model], seen: set[type]) -> bool:
    """Return whether deleting a row can raise ProtectedError or RestrictedError.

    Follows cascades, because deleting a row also deletes the rows that cascade
    from it, and any of those may be protected.
    """
    seen.add(model)
    for relation in model._meta.related_objects:
        on_delete = getattr(relation, "on_delete", None)
        if on_delete in (models.PROTECT, models.RESTRICT):
            return True
        related = relation.related_model
        if on_delete is models.CASCADE and related not in seen:
            if _delete_is_blocked(related, seen):
                return True
    return False
