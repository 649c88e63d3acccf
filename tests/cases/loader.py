"""Failure cases seen in other gateways, stored as JSON beside the tests that use them."""

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def load_case(number: int) -> dict:
    """Return the case whose file name starts with the two-digit number."""
    matches = sorted(DATA.glob(f"{number:02d}-*.json"))
    assert matches, f"no case file numbered {number:02d} in {DATA}"
    return json.loads(matches[0].read_text(encoding="utf-8"))
