from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from apps.tenancy.models import Organization
from nexus.engine.hooks.base import STAGES
from nexus.engine.hooks.patterns import PatternRule, compile_regex
from nexus.engine.hooks.registry import HOOK_KINDS


class RuleList(models.Model):
    """A named list of keywords or regular expressions that hooks refer to by name."""

    KEYWORDS = "keywords"
    REGEX = "regex"

    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(
        max_length=16, choices=[(KEYWORDS, "Keywords"), (REGEX, "Regular expressions")]
    )
    case_sensitive = models.BooleanField(default=False)
    entries = models.TextField(
        help_text="One keyword or pattern per line; lines starting with # are comments."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def rules(self, level: str | None = None) -> list[dict[str, Any]]:
        """Return the list as hook rule dicts; ids are `<list>:<line number>`."""
        field = "keyword" if self.kind == self.KEYWORDS else "pattern"
        rules = []
        for number, line in enumerate(self.entries.splitlines(), start=1):
            entry = line.strip() if self.kind == self.KEYWORDS else line.rstrip("\r\n")
            if not entry.strip() or entry.lstrip().startswith("#"):
                continue
            rule = {
                "id": f"{self.name}:{number}",
                field: entry,
                "caseless": not self.case_sensitive,
            }
            if level:
                rule["level"] = level
            rules.append(rule)
        return rules

    def clean(self) -> None:
        if self.kind != self.REGEX:
            return
        for rule in self.rules():
            try:
                compile_regex(
                    PatternRule(rule["id"], rule["pattern"], rule["caseless"])
                )
            except (ValueError, Exception) as exc:
                line = rule["id"].rsplit(":", 1)[1]
                raise ValidationError(
                    {"entries": f"Line {line} is not a valid pattern: {exc}"}
                ) from None


class Hook(models.Model):
    """One configured hook: what it checks, on which stage, in which order."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(
        max_length=32, choices=[(kind, cls.label) for kind, cls in HOOK_KINDS.items()]
    )
    stage = models.CharField(
        max_length=16, choices=[(stage, stage) for stage in STAGES], default="request"
    )
    priority = models.IntegerField(
        default=100, help_text="Hooks with lower numbers run first."
    )
    enabled = models.BooleanField(default=True)
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty applies the hook to every organization.",
    )
    timeout_ms = models.PositiveIntegerField(
        default=1000, help_text="Milliseconds a hook that waits on I/O may take."
    )
    fail_open = models.BooleanField(
        default=False,
        help_text="Let requests through when the hook fails or times out "
        "(they are audited as unscanned). Off blocks them.",
    )
    options = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stage", "priority", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.hooks.snapshot import hook_spec, missing_lists

        missing = missing_lists(self.kind, self.options)
        if missing:
            raise ValidationError(
                {"options": f"Rule list {missing[0]!r} does not exist."}
            )
        from nexus.engine.hooks.options import HookConfigError
        from nexus.engine.hooks.registry import validate_spec

        try:
            validate_spec(hook_spec(self))
        except HookConfigError as exc:
            raise ValidationError({"options": str(exc)}) from None


class AllowedWebhookHost(models.Model):
    """A host that webhook hooks may reach although it resolves to a private address."""

    host = models.CharField(
        max_length=253, unique=True, help_text="Host name or IP address, as in the URL."
    )
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs) -> None:
        self.host = self.host.strip().lower()
        super().save(*args, **kwargs)
