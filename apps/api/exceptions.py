"""The one exception handler of the REST API.

Every error body has the shape `{"error": {"code": ..., "message": ..., "details": ...}}`.
`code` is a stable snake_case string. `details` holds field errors or the offending
parameter, and is null when there is nothing more to say.
"""

import logging
from typing import Any

from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.iam.context import request_id_for
from nexus.engine.errors import NexusError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Return the API's error body."""
    return {"error": {"code": code, "message": message, "details": details}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Render any exception raised in an API view as the API's error body."""
    if isinstance(exc, NexusError):
        details = {"param": exc.param} if exc.param else None
        return Response(error_body(exc.code, exc.message, details), status=exc.status)
    if isinstance(exc, ProtectedError):
        names = sorted({type(row).__name__ for row in exc.protected_objects})
        return Response(
            error_body(
                "in_use",
                f"The row is still used by {len(exc.protected_objects)} other rows "
                f"({', '.join(names)}); delete or move them first.",
            ),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        return Response(
            error_body(
                "conflict",
                "The change conflicts with an existing row (a name is taken).",
            ),
            status=status.HTTP_409_CONFLICT,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        logger.error(
            "unhandled error in API view %s",
            type(context.get("view")).__name__,
            exc_info=exc,
            extra={
                "request_id": request_id_for(request) if request is not None else ""
            },
        )
        return Response(
            error_body("internal_error", "The server failed to handle the request."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = _render(exc, response.data)
    return response


def _render(exc: Exception, data: Any) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body("invalid", "The request is invalid; see details.", data)
    if isinstance(exc, exceptions.APIException):
        return error_body(exc.default_code, str(exc.detail))
    message = str(data.get("detail", "")) if isinstance(data, dict) else str(data)
    if isinstance(exc, Http404):
        return error_body("not_found", message or "Not found.")
    return error_body("permission_denied", message or "Permission denied.")
