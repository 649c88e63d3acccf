"""Write use cases of the routing app."""

import logging

from apps.routing.health import reset_health

logger = logging.getLogger(__name__)


def reset_target_health(target_id: str, *, actor: str) -> None:
    """Close a target's circuit breaker and clear its error window; repeats change nothing."""
    reset_health(target_id)
    logger.info(
        "target %s health reset by %s", target_id, actor, extra={"target": target_id}
    )
