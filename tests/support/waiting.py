"""Waiting on a condition instead of sleeping a fixed time."""

import time
from collections.abc import Callable


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05
) -> None:
    """Return once predicate() is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout:g} s"
        time.sleep(interval)
