"""Errors of the traffic engine.

Every error carries a stable snake_case code, a one-sentence message, the HTTP status
the gateway answers with and an OpenAI error type. Ingress formats render them in the
caller's own wire format.
"""


class NexusError(Exception):
    """Base of every error the engine raises."""

    status = 500
    code = "internal_error"
    type = "api_error"

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        # Extra response headers, for example Allow on 405 or rate-limit headers on 429.
        self.headers: dict[str, str] = {}
        if code is not None:
            self.code = code


class InvalidRequestError(NexusError):
    status = 400
    code = "invalid_request"
    type = "invalid_request_error"


class AuthenticationError(NexusError):
    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class PermissionDeniedError(NexusError):
    status = 403
    code = "model_not_allowed"
    type = "permission_error"


class NotFoundError(NexusError):
    status = 404
    code = "not_found"
    type = "not_found_error"


class MethodNotAllowedError(NexusError):
    status = 405
    code = "method_not_allowed"
    type = "invalid_request_error"


class RequestTimeoutError(NexusError):
    status = 408
    code = "request_timeout"
    type = "invalid_request_error"


class RequestTooLargeError(NexusError):
    status = 413
    code = "request_too_large"
    type = "invalid_request_error"


class UnsupportedMediaTypeError(NexusError):
    status = 415
    code = "unsupported_media_type"
    type = "invalid_request_error"


class HeadersTooLargeError(NexusError):
    status = 431
    code = "request_headers_too_large"
    type = "invalid_request_error"


class RateLimitError(NexusError):
    status = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailableError(NexusError):
    status = 503
    code = "service_unavailable"
    type = "api_error"


class ProviderError(NexusError):
    """An upstream provider failed; retryable errors may be retried or failed over."""

    status = 502
    code = "upstream_error"
    type = "api_error"
    retryable = False
    # Seconds the provider asked callers to wait (its retry-after header), if any.
    retry_after: float | None = None

    def __init__(
        self, message: str, *, upstream_status: int | None = None, **kwargs
    ) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


class ProviderStatusError(ProviderError):
    """The provider answered with an error status; the gateway keeps that status.

    Client errors the provider reports (400, 404, 422) keep their status and type so
    the caller can fix the request; 429 and overloaded answers stay distinguishable
    from server errors.
    """

    def __init__(
        self, message: str, *, upstream_status: int, error_type: str, **kwargs
    ) -> None:
        super().__init__(message, upstream_status=upstream_status, **kwargs)
        self.status = upstream_status
        self.type = error_type
        self.retryable = (
            upstream_status in {408, 409, 429, 529} or upstream_status >= 500
        )


class ProviderUnreachableError(ProviderError):
    status = 502
    code = "upstream_unreachable"
    retryable = True


class ProviderTimeoutError(ProviderError):
    status = 504
    code = "upstream_timeout"
    retryable = True


class ProviderProtocolError(ProviderError):
    """The provider's answer did not follow its documented wire format."""

    status = 502
    code = "upstream_protocol_error"
