"""Errors of SCIM provisioning, each with the scimType of RFC 7644, section 3.12."""

from nexus.engine.errors import NexusError


class ScimError(NexusError):
    """Base of every SCIM provisioning error."""

    status = 400
    code = "scim_error"
    type = "invalid_request_error"
    scim_type: str | None = None


class InvalidValueError(ScimError):
    code = "invalid_value"
    scim_type = "invalidValue"


class InvalidSyntaxError(ScimError):
    code = "invalid_syntax"
    scim_type = "invalidSyntax"


class InvalidPathError(ScimError):
    code = "invalid_path"
    scim_type = "invalidPath"


class InvalidFilterError(ScimError):
    code = "invalid_filter"
    scim_type = "invalidFilter"


class NoTargetError(ScimError):
    code = "no_target"
    scim_type = "noTarget"


class MutabilityError(ScimError):
    code = "mutability"
    scim_type = "mutability"


class UniquenessError(ScimError):
    status = 409
    code = "uniqueness"
    type = "conflict_error"
    scim_type = "uniqueness"
