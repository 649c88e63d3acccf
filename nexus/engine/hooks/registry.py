"""The hook kinds by name, and building or validating hooks from their specs."""

from nexus.engine.hooks.base import STAGES, Hook, HookServices
from nexus.engine.hooks.lists import ClassificationHook, RulesHook, SafetyHook
from nexus.engine.hooks.network import (
    HostListHook,
    IpListHook,
    RateLimitHook,
    ResidencyHook,
    SizeHook,
)
from nexus.engine.hooks.options import HookConfigError
from nexus.engine.hooks.pii import PiiHook
from nexus.engine.hooks.pipeline import BoundHook, HookSpec, Pipeline
from nexus.engine.hooks.webhook import WebhookHook

HOOK_KINDS: dict[str, type[Hook]] = {
    hook.kind: hook
    for hook in (
        PiiHook,
        ClassificationHook,
        RulesHook,
        SafetyHook,
        IpListHook,
        HostListHook,
        RateLimitHook,
        SizeHook,
        ResidencyHook,
        WebhookHook,
    )
}


def hook_class(kind: str) -> type[Hook]:
    try:
        return HOOK_KINDS[kind]
    except KeyError:
        raise HookConfigError(
            f"Unknown hook kind {kind!r}; known kinds: {', '.join(sorted(HOOK_KINDS))}."
        ) from None


def build_hook(spec: HookSpec, services: HookServices) -> Hook:
    """Build the hook of a spec, or raise HookConfigError naming what is wrong."""
    cls = hook_class(spec.kind)
    if spec.stage not in STAGES:
        raise HookConfigError(
            f"Unknown stage {spec.stage!r}; use one of {', '.join(STAGES)}."
        )
    if spec.stage not in cls.stages:
        raise HookConfigError(
            f"A {spec.kind} hook cannot run on the {spec.stage} stage; "
            f"it runs on: {', '.join(sorted(cls.stages))}."
        )
    try:
        return cls(spec.options, services)
    except HookConfigError:
        raise
    except ValueError as exc:
        raise HookConfigError(f"Invalid {spec.kind} hook options: {exc}") from None


def validate_spec(spec: HookSpec) -> None:
    """Raise HookConfigError when the spec would not build."""
    build_hook(spec, HookServices())


def build_pipeline(specs: list[HookSpec], services: HookServices) -> Pipeline:
    """Build the pipeline of the given specs; the caller filters them by organization."""
    return Pipeline([BoundHook(spec, build_hook(spec, services)) for spec in specs])
