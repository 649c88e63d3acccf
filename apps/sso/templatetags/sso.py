"""Template tags for the admin login page."""

from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.simple_tag
def sso_login_url(next_url: str = "") -> str:
    """Return the URL that starts a single sign-on login, or "" when it is off."""
    if not settings.NEXUS_OIDC_ENABLED:
        return ""
    url = reverse("oidc_authentication_init")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
