"""Bearer-token authentication of the SCIM endpoint, one token per organization."""

import json
import logging

from django.http import HttpRequest, HttpResponse
from django_scim.constants import SCIM_CONTENT_TYPE, SchemaURI
from django_scim.middleware import SCIMAuthCheckMiddleware
from django_scim.settings import scim_settings

from apps.scim.scoping import ORGANIZATION_ATTRIBUTE
from apps.scim.tokens import authenticate_scim_token

logger = logging.getLogger(__name__)

TOKEN_ATTRIBUTE = "scim_token"


def error_response(
    status: int, detail: str, scim_type: str | None = None
) -> HttpResponse:
    """Return a SCIM error response (RFC 7644, section 3.12)."""
    body = {"schemas": [SchemaURI.ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return HttpResponse(json.dumps(body), content_type=SCIM_CONTENT_TYPE, status=status)


class ScimTokenMiddleware(SCIMAuthCheckMiddleware):
    """Authenticate `Authorization: Bearer nsc_...` and scope the request to its org.

    django-scim2 wraps every SCIM view with this class. Requests and responses are
    logged by method, path and status only, because their bodies hold personal data.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(
            " "
        )
        token = None
        if scheme.lower() == "bearer" and credentials.strip():
            token = authenticate_scim_token(credentials.strip())
        if token is None:
            response = error_response(
                401, "A valid SCIM bearer token is required for this organization."
            )
            response["WWW-Authenticate"] = scim_settings.WWW_AUTHENTICATE_HEADER
            logger.info("SCIM request rejected: missing or invalid token")
            return response
        setattr(request, TOKEN_ATTRIBUTE, token)
        setattr(request, ORGANIZATION_ATTRIBUTE, token.organization)
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponse
    ) -> HttpResponse:
        token = getattr(request, TOKEN_ATTRIBUTE, None)
        logger.debug(
            "SCIM %s %s -> %s",
            request.method,
            request.path,
            response.status_code,
            extra={"tenant_id": token.organization_id if token else None},
        )
        return response
