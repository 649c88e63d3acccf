"""Hooks on who sends a request and where it goes: IP and host lists, rate limits,
request size and data residency."""

import fnmatch
import ipaddress
from collections.abc import Sequence

from nexus.engine.hooks.base import (
    Decision,
    Hook,
    HookContext,
    HookError,
    Segment,
    Verdict,
)
from nexus.engine.hooks.lists import LEVELS, classification_of
from nexus.engine.hooks.options import Option, OptionsSpec, positive, string_list


def _networks(value: list) -> None:
    string_list(value)
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR range.") from None


class IpListHook(Hook):
    """Allow or block callers by client IP address (CIDR ranges)."""

    kind = "ip_list"
    label = "IP allowlist and blocklist"
    stages = frozenset({"connection", "request"})
    options = OptionsSpec(
        {
            "allow": Option(
                "list", [], check=_networks, help="Only these ranges may call."
            ),
            "block": Option(
                "list", [], check=_networks, help="These ranges may not call."
            ),
        }
    )

    def __init__(self, config, services) -> None:
        super().__init__(config, services)
        self.allow = [
            ipaddress.ip_network(item, strict=False) for item in self.config["allow"]
        ]
        self.block = [
            ipaddress.ip_network(item, strict=False) for item in self.config["block"]
        ]

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        try:
            address = ipaddress.ip_address(context.client_ip or "")
        except ValueError:
            address = None
        if address is not None and address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        if self.block and address is not None:
            for network in self.block:
                if address in network:
                    return _forbidden(
                        "the client address is on the blocklist.", f"ip.block:{network}"
                    )
        if self.allow and (
            address is None or not any(address in net for net in self.allow)
        ):
            return _forbidden("the client address is not on the allowlist.", "ip.allow")
        return Verdict()


def _forbidden(reason: str, rule_id: str) -> Verdict:
    return Verdict(
        Decision.BLOCK, reason, (rule_id,), status=403, code="ip_not_allowed"
    )


def _host_patterns(value: list) -> None:
    string_list(value)
    for item in value:
        if not item or any(char in item for char in "/: "):
            raise ValueError(
                f"{item!r} is not a host name pattern such as *.example.com."
            )


class HostListHook(Hook):
    """Allow or block destination hosts; runs on the connection stage of proxy and agent."""

    kind = "host_list"
    label = "Destination host allowlist and blocklist"
    stages = frozenset({"connection"})
    options = OptionsSpec(
        {
            "allow": Option("list", [], check=_host_patterns),
            "block": Option("list", [], check=_host_patterns),
        }
    )

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        host = context.host.lower().rstrip(".")
        for pattern in self.config["block"]:
            if fnmatch.fnmatchcase(host, pattern.lower()):
                return Verdict(
                    Decision.BLOCK,
                    "the host is on the blocklist.",
                    (f"host.block:{pattern}",),
                    status=403,
                    code="host_not_allowed",
                )
        allow = self.config["allow"]
        if allow and not any(
            fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allow
        ):
            return Verdict(
                Decision.BLOCK,
                "the host is not on the allowlist.",
                ("host.allow",),
                status=403,
                code="host_not_allowed",
            )
        return Verdict()


class RateLimitHook(Hook):
    """Limit requests per virtual key and per client IP over a sliding window."""

    kind = "rate_limit"
    label = "Rate limit per key and per IP"
    stages = frozenset({"request"})
    is_async = True
    options = OptionsSpec(
        {
            "per_key": Option(
                "int", 0, help="Requests per window per key; 0 is no limit."
            ),
            "per_ip": Option(
                "int", 0, help="Requests per window per client IP; 0 is no limit."
            ),
            "window_seconds": Option("float", 60.0, check=positive),
        }
    )

    async def check_async(
        self, context: HookContext, segments: Sequence[Segment]
    ) -> Verdict:
        counter = self.services.counter
        if counter is None:
            raise HookError("no rate counter is configured")
        window = float(self.config["window_seconds"])
        checks = []
        if self.config["per_key"] and context.key_id is not None:
            checks.append(("key", f"key:{context.key_id}", self.config["per_key"]))
        if self.config["per_ip"] and context.client_ip:
            checks.append(("ip", f"ip:{context.client_ip}", self.config["per_ip"]))
        for scope, key, limit in checks:
            wait = await counter.hit(key, int(limit), window)
            if wait is not None:
                return Verdict(
                    Decision.BLOCK,
                    f"more than {limit} requests per {window:g} s for this {scope}.",
                    (f"rate.{scope}",),
                    status=429,
                    code="rate_limit_exceeded",
                    retry_after=wait,
                )
        return Verdict()


class SizeHook(Hook):
    """Reject requests whose body, text or message count is over a limit."""

    kind = "size"
    label = "Request size"
    stages = frozenset({"request"})
    options = OptionsSpec(
        {
            "max_body_bytes": Option(
                "int", 0, help="Maximum request body in bytes; 0 is no limit."
            ),
            "max_text_chars": Option(
                "int", 0, help="Maximum characters of text; 0 is no limit."
            ),
            "max_messages": Option(
                "int", 0, help="Maximum number of messages or inputs; 0 is no limit."
            ),
        }
    )

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        limits = self.config
        body = context.body_bytes
        if (
            limits["max_body_bytes"]
            and body is not None
            and body > limits["max_body_bytes"]
        ):
            return self._too_large(
                f"the body is {body} bytes; the limit is {limits['max_body_bytes']} bytes.",
                "size.body",
            )
        text = sum(len(segment.text) for segment in segments)
        if limits["max_text_chars"] and text > limits["max_text_chars"]:
            return self._too_large(
                f"the text is {text} characters; the limit is {limits['max_text_chars']}.",
                "size.text",
            )
        count = context.message_count
        if limits["max_messages"] and count > limits["max_messages"]:
            return self._too_large(
                f"the request has {count} messages; the limit is {limits['max_messages']}.",
                "size.messages",
            )
        return Verdict()

    def _too_large(self, reason: str, rule_id: str) -> Verdict:
        return Verdict(
            Decision.BLOCK, reason, (rule_id,), status=413, code="request_too_large"
        )


def _regions(value: dict) -> None:
    for level, regions in value.items():
        if level not in LEVELS:
            raise ValueError(
                f"{level!r} is not a classification level; use one of {LEVELS}."
            )
        string_list(regions)


class ResidencyHook(Hook):
    """Block a request whose provider region is not allowed for its classification.

    The classification comes from the tags of a classification hook that ran
    earlier; a level without an entry may go anywhere. Region patterns may use
    wildcards (eu-*). A connection without a region counts as outside every list.
    """

    kind = "residency"
    label = "Data residency"
    stages = frozenset({"request"})
    options = OptionsSpec(
        {
            "allowed_regions": Option(
                "dict",
                {},
                check=_regions,
                help="Classification level to allowed provider regions.",
            ),
            "unclassified": Option(
                "str",
                "public",
                choices=LEVELS,
                help="Level when no classification tag is present.",
            ),
        }
    )

    def allowed(self, level: str) -> list[str] | None:
        """Return the allowed region patterns of a level, or None when any region may serve it."""
        allowed = self.config["allowed_regions"]
        # A level without its own entry inherits the nearest lower level's entry,
        # so restricted data never goes where confidential data may not.
        for name in reversed(LEVELS[: LEVELS.index(level) + 1]):
            if name in allowed:
                return allowed[name]
        return None

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        # NOTE: the region is the first planned target's; a fallback target in
        # another region is not checked here.
        level = classification_of(context.tags) or self.config["unclassified"]
        patterns = self.allowed(level)
        if patterns is None:
            return Verdict()
        region = context.region.lower()
        if region and any(
            fnmatch.fnmatchcase(region, pattern.lower()) for pattern in patterns
        ):
            return Verdict()
        return Verdict(
            Decision.BLOCK,
            f"{level} data may not go to provider region {context.region or 'unknown'!r}.",
            (f"residency.{level}",),
            status=403,
            code="data_residency",
        )
