"""Errors of OpenID Connect single sign-on."""

from nexus.engine.errors import NexusError


class SsoError(NexusError):
    """Base of every single sign-on error."""

    status = 400
    code = "sso_error"
    type = "invalid_request_error"


class InvalidMappingError(SsoError):
    """A claim mapping names a role, project or group that does not fit."""

    code = "invalid_mapping"


class IdentityConflictError(SsoError):
    """A login's email address belongs to several users or to a superuser."""

    status = 403
    code = "identity_conflict"
    type = "permission_error"
