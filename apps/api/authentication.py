"""Service-token authentication: `Authorization: Bearer nst_...`."""

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.iam.models import ServiceToken
from apps.iam.tokens import TOKEN_PREFIX, authenticate_service_token


class TokenUser:
    """The `request.user` of a token-authenticated request; it is no database user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ServiceToken) -> None:
        self.token = token
        self.username = f"token:{token.prefix}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


class ServiceTokenAuthentication(BaseAuthentication):
    """Authenticate a service token sent as a bearer token."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[TokenUser, ServiceToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(
                "Invalid Authorization header; send Bearer <token>."
            )
        try:
            plaintext = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(
                "Invalid bearer token: it is not ASCII."
            ) from None
        if not plaintext.startswith(TOKEN_PREFIX):
            raise AuthenticationFailed(
                f'Invalid bearer token; service tokens start with "{TOKEN_PREFIX}".'
            )
        token = authenticate_service_token(plaintext)
        if token is None:
            raise AuthenticationFailed("Service token is invalid, expired or revoked.")
        return TokenUser(token), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
