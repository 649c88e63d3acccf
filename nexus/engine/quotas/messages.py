"""Quota amounts, rejections and rate-limit headers as callers see them."""

from decimal import Decimal
from urllib.parse import quote

from nexus.engine.errors import RateLimitError
from nexus.engine.pricing import NANO_PER_USD
from nexus.engine.quotas.rules import QuotaRule, Unit

SINGULAR_UNIT_NAMES = {Unit.TOKENS: "token", Unit.REQUESTS: "request"}


def format_usd(nano: int) -> str:
    """Return nano-USD as a decimal USD string with at least two decimals."""
    whole, _, fraction = f"{Decimal(nano) / NANO_PER_USD:f}".partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def format_amount(unit: Unit, amount: int) -> str:
    """Return an amount in the unit's display form: tokens and requests as integers."""
    return format_usd(amount) if unit == Unit.USD else str(amount)


def with_unit(unit: Unit, amount: int) -> str:
    """Return an amount with its unit name: "1.50 USD", "1 token", "2 requests"."""
    text = format_amount(unit, amount)
    if unit == Unit.USD:
        return f"{text} USD"
    if amount == 1:
        return f"{text} {SINGULAR_UNIT_NAMES[unit]}"
    return f"{text} {unit.value}"


def header_name(rule: QuotaRule) -> str:
    """Return the axis-and-unit part of rate-limit header names: "key-usd"."""
    return f"{rule.axis.replace('+', '-')}-{rule.unit.value}"


def limit_headers(entries: list[tuple[QuotaRule, int]]) -> dict[str, str]:
    """Return limit and remaining headers, keeping the tightest quota per axis and unit.

    Each entry is a rule with a hard limit and the amount left under it.
    """
    tightest: dict[str, tuple[QuotaRule, int]] = {}
    for rule, remaining in entries:
        name = header_name(rule)
        if name not in tightest or remaining < tightest[name][1]:
            tightest[name] = (rule, remaining)
    headers = {}
    for name, (rule, remaining) in tightest.items():
        headers[f"x-ratelimit-limit-{name}"] = format_amount(
            rule.unit, rule.hard_limit or 0
        )
        headers[f"x-ratelimit-remaining-{name}"] = format_amount(
            rule.unit, max(0, remaining)
        )
    return headers


def rejection(
    rule: QuotaRule,
    used: int,
    amount: int,
    retry_after: float | None,
    fits_when_empty: bool,
) -> RateLimitError:
    """Return the 429 for a request that does not fit under a rule's hard limit."""
    limit = rule.hard_limit or 0
    scope = f"{rule.axis} axis, {rule.unit.value} per {rule.window.label()}"
    if not fits_when_empty:
        message = (
            f'Quota "{rule.name}" ({scope}) rejects this request: it may use up to '
            f"{with_unit(rule.unit, amount)}, more than the hard limit of "
            f"{with_unit(rule.unit, limit)}; lower max_tokens or shorten the prompt."
        )
    else:
        message = (
            f'Quota "{rule.name}" ({scope}) is exhausted: '
            f"{format_amount(rule.unit, used)} of {with_unit(rule.unit, limit)} used, "
            f"and this request may use up to {with_unit(rule.unit, amount)}."
        )
    error = RateLimitError(message, retry_after=retry_after, code="quota_exceeded")
    name = header_name(rule)
    error.headers.update(limit_headers([(rule, limit - used)]))
    if retry_after is not None:
        error.headers[f"x-ratelimit-reset-{name}"] = f"{max(0.0, retry_after):.0f}s"
    error.headers["x-nexus-quota"] = quote(rule.name, safe=" -_.()")
    error.headers["x-nexus-quota-id"] = rule.uid
    error.headers["x-nexus-quota-axis"] = rule.axis
    return error
