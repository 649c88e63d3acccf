"""Attribute conditions of policies: source IP, UTC time window, tags and MFA.

Each condition evaluates to True, False or None (the fact is unknown, for example a
request without a client address). Unknown facts fail toward denial: an allow policy
needs every condition True, while a deny policy applies unless some condition is False.
"""

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from apps.iam.errors import InvalidPolicyError

MFA_METHOD = "mfa"


@dataclass
class Facts:
    """Request facts for the conditions; tags load lazily because most policies need none."""

    source_ip: str | None
    now: datetime
    claims: Mapping[str, Any]
    load_user_tags: Callable[[], Mapping[str, Any]]
    load_resource_tags: Callable[[], Mapping[str, Any]]
    _cache: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def user_tags(self) -> Mapping[str, Any]:
        if "user" not in self._cache:
            self._cache["user"] = self.load_user_tags()
        return self._cache["user"]

    def resource_tags(self) -> Mapping[str, Any]:
        if "resource" not in self._cache:
            self._cache["resource"] = self.load_resource_tags()
        return self._cache["resource"]

    @property
    def has_mfa(self) -> bool:
        methods = self.claims.get("amr") or []
        if isinstance(methods, str):
            methods = [methods]
        return MFA_METHOD in methods


def _ip_in(cidrs: list[str], facts: Facts) -> bool | None:
    if not facts.source_ip:
        return None
    try:
        address = ipaddress.ip_address(facts.source_ip)
    except ValueError:
        return None
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _ip_not_in(cidrs: list[str], facts: Facts) -> bool | None:
    inside = _ip_in(cidrs, facts)
    return None if inside is None else not inside


def _parse_clock(text: str) -> time:
    return time.fromisoformat(text)


def _time_in(window: Mapping[str, str], facts: Facts) -> bool:
    start = _parse_clock(window["start"])
    end = _parse_clock(window["end"])
    now = facts.now.time().replace(tzinfo=None)
    if start <= end:
        return start <= now < end
    # A window such as 22:00-06:00 wraps past midnight.
    return now >= start or now < end


def _time_not_in(window: Mapping[str, str], facts: Facts) -> bool:
    return not _time_in(window, facts)


def _tags_match(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for name, wanted in expected.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if name not in actual or actual[name] not in allowed:
            return False
    return True


def _resource_tags(expected: Mapping[str, Any], facts: Facts) -> bool:
    return _tags_match(expected, facts.resource_tags())


def _user_tags(expected: Mapping[str, Any], facts: Facts) -> bool:
    return _tags_match(expected, facts.user_tags())


def _mfa(required: bool, facts: Facts) -> bool:
    return facts.has_mfa is required


CHECKS: dict[str, Callable[[Any, Facts], bool | None]] = {
    "source_ip_in": _ip_in,
    "source_ip_not_in": _ip_not_in,
    "utc_time_in": _time_in,
    "utc_time_not_in": _time_not_in,
    "resource_tags": _resource_tags,
    "user_tags": _user_tags,
    "mfa": _mfa,
}


def evaluate(conditions: Mapping[str, Any], facts: Facts, *, deny: bool) -> bool:
    """Return whether a policy with these conditions applies to the facts."""
    for name, argument in conditions.items():
        result = CHECKS[name](argument, facts)
        if result is None:
            if deny:
                continue
            return False
        if not result:
            return False
    return True


def validate(conditions: Any) -> None:
    """Raise InvalidPolicyError unless conditions is a well-formed condition object."""
    if not isinstance(conditions, dict):
        raise InvalidPolicyError(
            "Policy conditions must be a JSON object.", param="conditions"
        )
    for name, argument in conditions.items():
        validator = VALIDATORS.get(name)
        if validator is None:
            raise InvalidPolicyError(
                f'Unknown policy condition "{name}". Use one of: {", ".join(sorted(CHECKS))}.',
                param="conditions",
            )
        validator(name, argument)


def _validate_cidrs(name: str, argument: Any) -> None:
    if not isinstance(argument, list) or not argument:
        raise InvalidPolicyError(
            f'Condition "{name}" must be a non-empty list of CIDRs.'
        )
    for cidr in argument:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise InvalidPolicyError(
                f'Condition "{name}" has an invalid CIDR "{cidr}".'
            ) from None


def _validate_window(name: str, argument: Any) -> None:
    if not isinstance(argument, dict) or set(argument) != {"start", "end"}:
        raise InvalidPolicyError(
            f'Condition "{name}" must be an object with "start" and "end" (HH:MM, UTC).'
        )
    for clock in argument.values():
        try:
            _parse_clock(str(clock))
        except ValueError:
            raise InvalidPolicyError(
                f'Condition "{name}" has an invalid time "{clock}"; use HH:MM.'
            ) from None


def _validate_tags(name: str, argument: Any) -> None:
    if not isinstance(argument, dict) or not argument:
        raise InvalidPolicyError(
            f'Condition "{name}" must be a non-empty object of tags.'
        )


def _validate_bool(name: str, argument: Any) -> None:
    if not isinstance(argument, bool):
        raise InvalidPolicyError(f'Condition "{name}" must be true or false.')


VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "source_ip_in": _validate_cidrs,
    "source_ip_not_in": _validate_cidrs,
    "utc_time_in": _validate_window,
    "utc_time_not_in": _validate_window,
    "resource_tags": _validate_tags,
    "user_tags": _validate_tags,
    "mfa": _validate_bool,
}
