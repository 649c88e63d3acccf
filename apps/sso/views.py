"""Start and finish an OpenID Connect login; render the page of a rejected login."""

import logging

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from apps.iam.context import store_session_claims
from apps.sso.backends import (
    CLAIMS_ATTRIBUTE,
    REJECTED_INVALID_RESPONSE,
    REJECTION_ATTRIBUTE,
)
from apps.sso.services import REJECTED_CONFLICT, REJECTED_INACTIVE, REJECTED_NO_ROLE

logger = logging.getLogger(__name__)

REJECTED_PROVIDER_ERROR = "provider_error"
REJECTED_INCOMPLETE = "incomplete"

# Reason -> (HTTP status, page text)
REJECTION_PAGES: dict[str, tuple[int, str]] = {
    REJECTED_NO_ROLE: (
        403,
        "Your identity provider account is not mapped to any role in Nexus. "
        "Ask a Nexus administrator to map one of your groups to a role.",
    ),
    REJECTED_INACTIVE: (
        403,
        "Your Nexus account is deactivated. Ask a Nexus administrator to "
        "reactivate it.",
    ),
    REJECTED_CONFLICT: (
        403,
        "Your email address matches more than one Nexus account, or an account "
        "that cannot sign in with single sign-on. Ask a Nexus administrator to "
        "link your account.",
    ),
    REJECTED_INVALID_RESPONSE: (
        400,
        "The identity provider's response failed validation (state, nonce, "
        "signature, issuer or audience). Start the sign-in again.",
    ),
    REJECTED_PROVIDER_ERROR: (
        502,
        "The identity provider did not complete the sign-in. Try again later.",
    ),
    REJECTED_INCOMPLETE: (
        400,
        "The sign-in did not complete. Start it again from the login page.",
    ),
}


def render_rejection(request: HttpRequest, reason: str) -> HttpResponse:
    """Render the page that explains why a login was rejected."""
    status, message = REJECTION_PAGES.get(reason, REJECTION_PAGES[REJECTED_INCOMPLETE])
    context = {
        "title": "Sign-in rejected",
        "reason": reason,
        "message": message,
        "login_url": reverse("admin:login"),
        "sso_login_url": reverse("oidc_authentication_init"),
    }
    return render(request, "sso/rejected.html", context, status=status)


class SsoLoginView(OIDCAuthenticationRequestView):
    """Redirect to the identity provider with state, nonce and a PKCE challenge."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.NEXUS_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return super().get(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    """Check the provider's answer, sign the user in or render why not."""

    @property
    def success_url(self) -> str:
        return self.request.session.get("oidc_login_next") or reverse("admin:index")

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.NEXUS_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            logger.warning("OpenID Connect callback rejected: %s", exc)
            return render_rejection(request, REJECTED_INVALID_RESPONSE)
        except requests.RequestException as exc:
            status = exc.response.status_code if exc.response is not None else None
            logger.warning(
                "identity provider request failed during login (status %s)", status
            )
            return render_rejection(request, REJECTED_PROVIDER_ERROR)

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        store_session_claims(self.request, getattr(self.request, CLAIMS_ATTRIBUTE, {}))
        return response

    def login_failure(self) -> HttpResponse:
        # No reason is set when the provider returned an error (for example the
        # person cancelled) or no login was in progress in this session.
        reason = getattr(self.request, REJECTION_ATTRIBUTE, None)
        return render_rejection(self.request, reason or REJECTED_INCOMPLETE)
