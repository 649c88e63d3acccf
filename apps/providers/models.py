import uuid

from django.core.exceptions import ValidationError
from django.db import models

from apps.tenancy.models import Organization
from nexus.engine.providers.base import OptionsError
from nexus.engine.providers.registry import PROVIDER_TYPES, provider_choices
from nexus.engine.vault import Sealed


def validate_provider_type(value: str) -> None:
    if value not in PROVIDER_TYPES:
        raise ValidationError(
            f'Unknown provider type "{value}". Choose one of: {", ".join(sorted(PROVIDER_TYPES))}.'
        )


class ProviderConnection(models.Model):
    """An account at an LLM provider: type, endpoint and an encrypted credential.

    A connection with an organization serves only that organization's keys. One
    without is a shared platform connection that every organization may use and
    only superusers may change.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization,
        # An organization's credentials go only by deleting its connections on purpose.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="provider_connections",
        help_text="The organization that owns this connection and alone may use it. "
        "Empty makes a shared platform connection that every organization may use.",
    )
    name = models.CharField(max_length=100, unique=True)
    provider_type = models.CharField(
        max_length=40, choices=provider_choices, validators=[validate_provider_type]
    )
    base_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Provider API root, for example https://api.openai.com/v1 for OpenAI "
        "or https://api.anthropic.com for Anthropic. Empty uses the provider's public endpoint.",
    )
    region = models.CharField(max_length=64, blank=True)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Provider-specific settings as a JSON object.",
    )
    credential_ciphertext = models.TextField(blank=True, editable=False)
    credential_key_id = models.CharField(max_length=64, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider_type})"

    @property
    def credential_associated_data(self) -> str:
        return f"nexus:provider-connection:{self.uid}:credential"

    @property
    def sealed_credential(self) -> Sealed | None:
        if not self.credential_ciphertext:
            return None
        return Sealed(self.credential_key_id, self.credential_ciphertext)

    def clean(self) -> None:
        adapter = PROVIDER_TYPES.get(self.provider_type)
        if adapter is None:
            return
        try:
            adapter.check_connection(self.base_url, self.options)
        except OptionsError as exc:
            raise ValidationError(str(exc)) from None


class Model(models.Model):
    """A public model name callers use, the connection behind it and its prices."""

    KIND_CHAT = "chat"
    KIND_EMBEDDINGS = "embeddings"
    KIND_CHOICES = [(KIND_CHAT, "Chat"), (KIND_EMBEDDINGS, "Embeddings")]

    name = models.CharField(
        max_length=200, unique=True, help_text="The name callers send as 'model'."
    )
    aliases = models.JSONField(
        default=list, blank=True, help_text="Other names that resolve to this model."
    )
    kind = models.CharField(max_length=20, choices=KIND_CHOICES, default=KIND_CHAT)
    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.PROTECT, related_name="models"
    )
    upstream_model = models.CharField(
        max_length=200, help_text="The model id sent to the provider."
    )
    input_price = models.DecimalField(
        "input USD per 1M tokens", max_digits=14, decimal_places=6, default=0
    )
    output_price = models.DecimalField(
        "output USD per 1M tokens", max_digits=14, decimal_places=6, default=0
    )
    cached_input_price = models.DecimalField(
        "cached input USD per 1M tokens",
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Empty charges cached input at the input price.",
    )
    cache_write_price = models.DecimalField(
        "cache write USD per 1M tokens",
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Empty charges cache writes at the input price.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def organization(self) -> Organization | None:
        """Return the organization that owns the model's connection, None if shared."""
        return self.connection.organization if self.connection_id else None

    def clean(self) -> None:
        if not isinstance(self.aliases, list) or not all(
            isinstance(a, str) and a for a in self.aliases
        ):
            raise ValidationError(
                {"aliases": "Aliases must be a JSON array of non-empty strings."}
            )
        taken = set(Model.objects.exclude(pk=self.pk).values_list("name", flat=True))
        for other in Model.objects.exclude(pk=self.pk).only("aliases"):
            taken.update(other.aliases or [])
        clashes = sorted(({self.name} | set(self.aliases)) & taken)
        if clashes:
            raise ValidationError(
                f"Model names and aliases must be unique; already used: {', '.join(clashes)}."
            )
