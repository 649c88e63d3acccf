"""The values hooks receive and return, and the base class of every hook."""

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nexus.engine.errors import NexusError, ServiceUnavailableError
from nexus.engine.hooks.options import OptionsSpec

STAGES = ("connection", "request", "response")


class Decision(enum.IntEnum):
    """A hook's decision; a higher value wins when decisions are combined."""

    APPROVE = 0
    REDACT = 1
    BLOCK = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> "Decision":
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(
                f"Unknown decision {value!r}; use approve, redact or block."
            ) from None


@dataclass(frozen=True)
class Segment:
    """One piece of text a hook inspects.

    `kind` is system, message, tool_arguments, tool_result, input, output or
    reasoning; `path` locates the text in the canonical body so a redaction can be
    written back.
    """

    kind: str
    text: str
    role: str = ""
    path: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Redaction:
    """Replace text[start:end] of one segment with replacement."""

    segment: int
    start: int
    end: int
    replacement: str
    rule_id: str


@dataclass
class Verdict:
    """What one hook decided about one stage of one request.

    `status`, `code` and `retry_after` shape the error a block answers with; the
    defaults are 400 and content_blocked.
    """

    decision: Decision = Decision.APPROVE
    reason: str = ""
    rule_ids: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    redactions: tuple[Redaction, ...] = ()
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None


APPROVE = Verdict()


@dataclass
class HookContext:
    """Request metadata a hook may read besides the text; never the raw body."""

    stage: str
    request_id: str = ""
    org_id: int | None = None
    project_id: int | None = None
    key_id: int | None = None
    client_ip: str | None = None
    host: str = ""
    ingress: str = ""
    model: str = ""
    provider: str = ""
    provider_type: str = ""
    region: str = ""
    body_bytes: int | None = None
    message_count: int = 0
    tags: set[str] = field(default_factory=set)
    # The segments as the caller sent them, before any hook redacted them.
    original: Sequence[Segment] = ()


class HookBlockedError(NexusError):
    """A hook blocked the request or the answer."""

    status = 400
    code = "content_blocked"
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        if status is not None:
            self.status = status
            if status == 429:
                self.type = "rate_limit_error"
            elif status in (401, 403):
                self.type = "permission_error"
        self.retry_after = retry_after


class HookFailedError(ServiceUnavailableError):
    """A fail-closed hook raised an error or timed out, so the request is stopped."""

    code = "hook_failed"


class HookError(Exception):
    """A hook could not reach a decision (a peer failed, an answer was malformed)."""


class Hook:
    """Base of every hook kind.

    Subclasses set `kind`, `stages` and `options` and override `check` (CPU-only
    hooks) or `check_async` (hooks that wait on I/O). Only CPU-only hooks may run on
    the response stage, because stream filters run synchronously.
    """

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    stages: ClassVar[frozenset[str]] = frozenset({"request", "response"})
    options: ClassVar[OptionsSpec] = OptionsSpec({})
    is_async: ClassVar[bool] = False
    # Characters a stream filter holds back so a match split across chunks is seen whole.
    stream_window: ClassVar[int] = 0

    def __init__(self, config: dict[str, Any], services: "HookServices") -> None:
        self.config = self.options.parse(config, self.kind)
        self.services = services

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        raise NotImplementedError

    async def check_async(
        self, context: HookContext, segments: Sequence[Segment]
    ) -> Verdict:
        return self.check(context, segments)

    async def close(self) -> None:
        """Release what the hook opened (sessions, connections)."""


@dataclass
class HookServices:
    """Shared resources hooks use: rate counters and the webhook HTTP client."""

    counter: Any = None
    http: Any = None
    allowed_hosts: frozenset[str] = frozenset()
