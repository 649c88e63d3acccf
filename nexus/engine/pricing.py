"""Cost of an answer in integer nano-USD from a model's prices."""

from decimal import ROUND_HALF_UP, Decimal

from nexus.engine.canonical import Usage
from nexus.engine.snapshot import Prices

NANO_PER_USD = 10**9


def usd_per_million_to_nano(value: Decimal | float | str | None) -> int:
    """Convert a price in USD per million tokens to nano-USD per million tokens."""
    if value is None:
        return 0
    return int((Decimal(str(value)) * NANO_PER_USD).to_integral_value(ROUND_HALF_UP))


def cost_nano(usage: Usage, prices: Prices) -> int:
    """Return the cost of usage in nano-USD.

    Cached input and cache writes are priced at their own rates when the model has
    them, otherwise at the input rate; reasoning tokens are part of output.
    """
    cached_rate = prices.input if prices.cached_input is None else prices.cached_input
    write_rate = prices.input if prices.cache_write is None else prices.cache_write
    plain_input = max(
        usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens, 0
    )
    total = (
        plain_input * prices.input
        + usage.cached_tokens * cached_rate
        + usage.cache_write_tokens * write_rate
        + usage.output_tokens * prices.output
    )
    return (total + 500_000) // 1_000_000


def nano_to_usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO_PER_USD
