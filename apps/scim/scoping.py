"""Organization scoping and absolute locations for SCIM requests.

The SCIM token middleware sets `request.scim_organization`. Every query of the
endpoint is limited to that organization, so one organization's provisioning client
cannot read or change another's users and groups.
"""

from collections.abc import Callable
from typing import Any

from django.db import models
from django.http import HttpRequest

ORGANIZATION_ATTRIBUTE = "scim_organization"


def base_location(request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> str:
    """Return the scheme and host that resource locations start with."""
    if request is None:
        return ""
    return request.build_absolute_uri("/")


def organization_filter(
    model: type[models.Model],
) -> Callable[..., dict[str, Any]]:
    """Return django-scim2's getter of extra filter arguments for model."""

    def filter_kwargs(
        request: HttpRequest, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        return {"organization_id": getattr(request, ORGANIZATION_ATTRIBUTE).pk}

    return filter_kwargs
