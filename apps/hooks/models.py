import json
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from apps.providers.vault import key_ring
from apps.tenancy.models import Organization
from nexus.engine.hooks.base import STAGES
from nexus.engine.hooks.patterns import PatternRule, compile_regex
from nexus.engine.hooks.registry import HOOK_KINDS
from nexus.engine.hooks.webhook import WebhookHook
from nexus.engine.vault import Sealed, VaultError

# The value shown in place of each webhook header value, in a hook's stored options
# and in API responses. Sending it back for a header keeps that header's stored value.
MASKED_HEADER = "********"


def headers_associated_data(uid: uuid.UUID | str) -> str:
    """Return the associated data that binds sealed header values to one hook row."""
    return f"nexus:hook:{uid}:headers"


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
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="The hook kind's options as a JSON object. Webhook header values "
        f"are stored encrypted and shown as {MASKED_HEADER}; leave that in place "
        "to keep a value.",
    )
    # Identity bound into the sealed header values, so a ciphertext copied to
    # another row does not open.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    headers_ciphertext = models.TextField(blank=True, editable=False)
    headers_key_id = models.CharField(max_length=64, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stage", "priority", "name"]

    def __str__(self) -> str:
        return self.name

    def read_sealed_headers(self) -> str:
        """Decrypt the stored header values (a JSON object), or return "" if none.

        Raises VaultError when the key is not in the key ring or the data was altered.
        """
        if not self.headers_ciphertext:
            return ""
        sealed = Sealed(self.headers_key_id, self.headers_ciphertext)
        return key_ring().open(sealed, headers_associated_data(self.uid))

    def write_sealed_headers(self, plaintext: str) -> None:
        """Encrypt header values, a JSON object, into the row without saving it."""
        if not plaintext:
            self.headers_ciphertext = self.headers_key_id = ""
            return
        sealed = key_ring().seal(plaintext, headers_associated_data(self.uid))
        self.headers_ciphertext, self.headers_key_id = sealed.blob, sealed.key_id

    def webhook_headers(self) -> dict[str, Any]:
        """Return the webhook headers of the options with their plaintext values.

        A header whose value is MASKED_HEADER takes its stored value, and keeps the
        mask when there is none. Hooks of other kinds have no headers. Raises
        VaultError when a stored value is needed but cannot be decrypted.
        """
        options = self.options if isinstance(self.options, dict) else {}
        headers = options.get("headers")
        if self.kind != WebhookHook.kind or not isinstance(headers, dict):
            return {}
        stored: dict[str, Any] = {}
        if MASKED_HEADER in headers.values():
            stored = json.loads(self.read_sealed_headers() or "{}")
        return {
            name: stored.get(name, value) if value == MASKED_HEADER else value
            for name, value in headers.items()
        }

    def seal_webhook_headers(self) -> None:
        """Move the webhook header values from the options into the sealed field."""
        headers = self.webhook_headers()
        self.write_sealed_headers(json.dumps(headers) if headers else "")
        if headers:
            masked = dict.fromkeys(headers, MASKED_HEADER)
            self.options = {**self.options, "headers": masked}

    def save(self, *args, **kwargs) -> None:
        # Every write of the options seals the header values, so no path (REST
        # API, admin, ORM) stores them in plaintext. QuerySet.update() and
        # bulk_create() skip save() and therefore this step.
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "options" in update_fields:
            self.seal_webhook_headers()
            if update_fields is not None:
                kwargs["update_fields"] = {
                    *update_fields,
                    "headers_ciphertext",
                    "headers_key_id",
                }
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from apps.hooks.snapshot import hook_spec, missing_lists

        self._check_masked_headers()
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

    def _check_masked_headers(self) -> None:
        try:
            headers = self.webhook_headers()
        except VaultError as exc:
            raise ValidationError(
                {
                    "options": f"Stored header values cannot be decrypted: {exc} "
                    "Send every header value again."
                }
            ) from None
        for name, value in headers.items():
            if value == MASKED_HEADER:
                raise ValidationError(
                    {
                        "options": f"Header {name!r} has no stored value, so send "
                        f"its value instead of {MASKED_HEADER}."
                    }
                )


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
