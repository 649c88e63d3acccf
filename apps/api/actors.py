"""The acting principal of an API request."""

from rest_framework.request import Request

from apps.iam.evaluator import Actor
from apps.iam.models import ServiceToken


def actor_of(request: Request) -> Actor:
    """Return the service token of a token request, else the user."""
    if isinstance(request.auth, ServiceToken):
        return request.auth
    return request.user
