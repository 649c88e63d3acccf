"""A circuit breaker that skips a failing dependency for a cool-down period."""

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Open after `threshold` consecutive failures; allow one trial after `cool_down`.

    While open, `allow()` returns False and callers skip the dependency. After the
    cool-down one caller is let through (half-open): its success closes the breaker,
    its failure opens it for another cool-down.
    """

    def __init__(
        self,
        name: str,
        *,
        threshold: int = 3,
        cool_down: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = max(1, threshold)
        self.cool_down = cool_down
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.trial_running = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cool_down:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Return whether a call may go through now."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def success(self) -> None:
        if self.opened_at is not None:
            logger.info("circuit %s closed after a successful trial", self.name)
        self.failures = 0
        self.opened_at = None
        self.trial_running = False

    def failure(self) -> None:
        self.failures += 1
        self.trial_running = False
        if self.opened_at is not None or self.failures >= self.threshold:
            if self.state != "open":
                logger.warning(
                    "circuit %s opened for %.0f s after %s failures",
                    self.name,
                    self.cool_down,
                    self.failures,
                )
            self.opened_at = self.clock()
