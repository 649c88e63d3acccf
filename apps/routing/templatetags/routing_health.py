"""Filters that format target health for the admin."""

from django import template

from nexus.engine.routing.health import OPEN, TargetHealth

register = template.Library()


@register.filter
def error_share(health: TargetHealth) -> str:
    return f"{health.error_rate:.0%} of {health.requests}"


@register.filter
def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


@register.filter
def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


@register.filter
def reopens_in(health: TargetHealth, now: float) -> str:
    if health.state != OPEN:
        return ""
    return f"{max(0.0, health.open_until - now):.0f} s"
