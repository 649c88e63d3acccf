"""Errors of identity and access management."""

from nexus.engine.errors import NexusError


class IamError(NexusError):
    """Base of every identity and access error."""

    status = 400
    code = "invalid_request"
    type = "invalid_request_error"


class InvalidRoleError(IamError):
    code = "invalid_role"


class InvalidPolicyError(IamError):
    code = "invalid_policy"


class InvalidResourceNameError(IamError):
    code = "invalid_resource_name"


class LastOwnerError(IamError):
    status = 409
    code = "last_owner"
    type = "conflict_error"


class EscalationError(IamError):
    """The actor tried to grant a permission it does not hold itself."""

    status = 403
    code = "privilege_escalation"
    type = "permission_error"


class AccessDeniedError(IamError):
    status = 403
    code = "permission_denied"
    type = "permission_error"


class InvalidScopeError(IamError):
    code = "invalid_scope"


class InvalidTagsError(IamError):
    code = "invalid_tags"
