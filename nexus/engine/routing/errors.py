"""Errors of route configuration and routing decisions."""

from nexus.engine.errors import (
    NexusError,
    PermissionDeniedError,
    ServiceUnavailableError,
)


class RouteConfigError(NexusError):
    """A route's strategy config is invalid; `path` locates the bad part."""

    status = 400
    code = "invalid_route_config"
    type = "invalid_request_error"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class NoAllowedTargetError(PermissionDeniedError):
    """A policy strategy excluded every target for this request."""

    code = "no_allowed_target"


class NoHealthyTargetError(ServiceUnavailableError):
    """Every target the route chose has an open circuit breaker."""

    code = "no_healthy_target"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
