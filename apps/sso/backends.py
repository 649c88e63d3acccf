"""The authentication backend of OpenID Connect login (mozilla-django-oidc)."""

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.sso.claims import check_id_token_claims, merge_claims
from apps.sso.services import sign_in

logger = logging.getLogger(__name__)

# Request attributes the callback view reads after authenticate() returns.
CLAIMS_ATTRIBUTE = "nexus_oidc_claims"
REJECTION_ATTRIBUTE = "nexus_sso_rejection"
REJECTED_INVALID_RESPONSE = "invalid_response"


class OidcBackend(OIDCAuthenticationBackend):
    """Sign people in with the authorization code flow and map their groups to roles.

    The code flow itself (state, nonce, PKCE, token exchange, signature check) is
    mozilla-django-oidc's. This backend adds the issuer and audience checks, merges
    the userinfo claims with the ID token's, and hands them to `sign_in`, which
    creates the user on first login and syncs roles from the claim mappings.
    """

    def authenticate(
        self, request: HttpRequest | None, **kwargs: Any
    ) -> AbstractBaseUser | None:
        # Only the callback view passes a nonce; password logins skip this backend.
        if request is None or "nonce" not in kwargs or not settings.NEXUS_OIDC_ENABLED:
            return None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        if "nonce" in kwargs:
            check_id_token_claims(
                payload,
                issuer=settings.NEXUS_OIDC_ISSUER,
                client_id=settings.OIDC_RP_CLIENT_ID,
            )
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> AbstractBaseUser | None:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        try:
            claims = merge_claims(payload, userinfo)
        except SuspiciousOperation:
            setattr(self.request, REJECTION_ATTRIBUTE, REJECTED_INVALID_RESPONSE)
            raise

        result = sign_in(claims, groups_claim=settings.NEXUS_OIDC_GROUPS_CLAIM)
        setattr(self.request, CLAIMS_ATTRIBUTE, claims)
        if result.rejection:
            setattr(self.request, REJECTION_ATTRIBUTE, result.rejection)
        return result.user

    def get_user(self, user_id: int) -> AbstractBaseUser | None:
        user = super().get_user(user_id)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user
