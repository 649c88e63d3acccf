"""Build the hooks part of the config snapshot.

Specs carry their rule lists resolved and their webhook header values decrypted.
"""

import logging
from dataclasses import dataclass
from typing import Any

from nexus.engine.hooks.pipeline import HookSpec
from nexus.engine.hooks.webhook import WebhookHook
from nexus.engine.vault import VaultError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HooksConfig:
    """Every enabled hook and the webhook hosts an administrator allowed."""

    hooks: tuple[HookSpec, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()

    def for_org(self, org_id: int | None) -> tuple[HookSpec, ...]:
        return tuple(spec for spec in self.hooks if spec.org_id in (None, org_id))


def list_names(kind: str, options: Any) -> list[str]:
    """Return the rule list names a hook's options refer to."""
    if not isinstance(options, dict):
        return []
    lists = options.get("lists")
    if kind == "rules" and isinstance(lists, list):
        return [str(name) for name in lists]
    if kind == "classification" and isinstance(lists, dict):
        return [str(name) for name in lists]
    return []


def missing_lists(kind: str, options: Any) -> list[str]:
    from apps.hooks.models import RuleList

    names = list_names(kind, options)
    existing = set(
        RuleList.objects.filter(name__in=names).values_list("name", flat=True)
    )
    return [name for name in names if name not in existing]


def resolved_options(kind: str, options: Any, lists: dict[str, Any]) -> Any:
    """Return the options with the rules of the named lists appended to `rules`."""
    if not isinstance(options, dict) or not list_names(kind, options):
        return options
    resolved = dict(options)
    rules = list(resolved.get("rules") or [])
    if kind == "rules":
        for name in options["lists"]:
            if name in lists:
                rules.extend(lists[name].rules())
    else:
        for name, level in options["lists"].items():
            if name in lists:
                rules.extend(lists[name].rules(level=level))
    resolved["rules"] = rules
    return resolved


def hook_spec(hook, lists: dict[str, Any] | None = None) -> HookSpec:
    """Return the engine spec of a Hook row."""
    from apps.hooks.models import RuleList

    if lists is None:
        names = list_names(hook.kind, hook.options)
        lists = {row.name: row for row in RuleList.objects.filter(name__in=names)}
    return HookSpec(
        id=hook.pk or 0,
        name=hook.name,
        kind=hook.kind,
        stage=hook.stage,
        priority=hook.priority,
        timeout_ms=hook.timeout_ms,
        fail_open=hook.fail_open,
        options=unsealed_options(
            hook, resolved_options(hook.kind, hook.options, lists)
        ),
        org_id=hook.organization_id,
    )


def unsealed_options(hook, options: Any) -> Any:
    """Return the options with the webhook header values decrypted.

    When they cannot be decrypted, the masked values stay in place and are sent
    as they are, so a decision service that checks them rejects the call and the
    hook's fail mode applies.
    """
    if hook.kind != WebhookHook.kind or not isinstance(options, dict):
        return options
    if not isinstance(options.get("headers"), dict):
        return options
    try:
        headers = hook.webhook_headers()
    except VaultError as exc:
        logger.error(
            "decrypting the webhook headers of hook %s failed: %s",
            hook.name,
            exc,
            extra={"hook_id": hook.pk},
        )
        return options
    return {**options, "headers": headers}


def build_hooks_config() -> HooksConfig:
    """Read enabled hooks, rule lists and allowed hosts for the snapshot."""
    from apps.hooks.models import AllowedWebhookHost, Hook, RuleList

    lists = {row.name: row for row in RuleList.objects.all()}
    hooks = tuple(hook_spec(hook, lists) for hook in Hook.objects.filter(enabled=True))
    hosts = frozenset(AllowedWebhookHost.objects.values_list("host", flat=True))
    return HooksConfig(hooks=hooks, allowed_hosts=hosts)
