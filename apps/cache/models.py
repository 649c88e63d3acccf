"""Cache settings per organization, project, key and model; purges and quarantine."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.keys.models import VirtualKey
from apps.tenancy.models import Organization, Project


class SemanticIndex(models.Model):
    """A vector index of the semantic cache and the embedding model that fills it."""

    BACKEND_NUMPY = "numpy"
    BACKEND_PGVECTOR = "pgvector"
    BACKEND_REDIS = "redis"
    BACKEND_CHOICES = [
        (BACKEND_NUMPY, "In-process numpy index (embedded default, per process)"),
        (BACKEND_PGVECTOR, "PostgreSQL with pgvector"),
        (BACKEND_REDIS, "Redis or Valkey vector search (FT.SEARCH)"),
    ]
    LOCAL_MODEL = "local"

    name = models.CharField(
        max_length=40,
        unique=True,
        validators=[
            RegexValidator(r"^[a-z0-9_]{1,40}$", "Use 1 to 40 of a-z, 0-9 and _.")
        ],
    )
    backend = models.CharField(
        max_length=20, choices=BACKEND_CHOICES, default=BACKEND_NUMPY
    )
    embedding_model = models.CharField(
        max_length=200,
        default=LOCAL_MODEL,
        help_text=(
            '"local" for the bundled all-MiniLM-L6-v2 model (needs '
            "requirements-embeddings.txt), or the name of an embeddings model "
            "served by this gateway."
        ),
    )
    dimensions = models.PositiveIntegerField(
        default=0,
        help_text="Vector width to request from a gateway model; 0 takes its default.",
    )
    threshold = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Minimum cosine similarity for a hit, from 0 to 1.",
    )
    ttl_seconds = models.PositiveIntegerField(
        default=86_400, validators=[MinValueValidator(1)]
    )
    timeout_ms = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(10)],
        help_text="Time limit of one lookup (embedding and search) in milliseconds.",
    )
    breaker_failures = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Consecutive failures that open the circuit breaker.",
    )
    breaker_cool_down_seconds = models.PositiveIntegerField(
        default=30, help_text="Seconds the semantic layer is skipped once open."
    )
    # Bumped by the drop action; every gateway then drops and recreates the index.
    generation = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "semantic indexes"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # An index serves every organization that uses it, so embedding with one
        # organization's model would spend that organization's credential for all.
        from apps.providers.models import Model

        for model in Model.objects.select_related("connection"):
            named = self.embedding_model == model.name or self.embedding_model in (
                model.aliases or []
            )
            if named and model.connection.organization_id is not None:
                raise ValidationError(
                    {
                        "embedding_model": f"Model {self.embedding_model!r} belongs "
                        "to one organization; a semantic index serves every "
                        'organization, so it needs a shared model or "local".'
                    }
                )


class CachePolicy(models.Model):
    """Cache settings for the requests of an org, project or key, optionally per model.

    The most specific row applies: key, then project, then organization, then a row
    with none of them (global). Within one level a row naming the model wins over a
    row for every model. Without any matching row nothing is cached or coalesced.
    """

    SHARE_KEY = "key"
    SHARE_PROJECT = "project"
    SHARE_ORG = "org"
    SHARE_CHOICES = [
        (SHARE_KEY, "Each virtual key alone"),
        (SHARE_PROJECT, "Keys of the same project"),
        (SHARE_ORG, "Every key of the organization"),
    ]

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE
    )
    key = models.ForeignKey(VirtualKey, null=True, blank=True, on_delete=models.CASCADE)
    model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Public model name; blank for every model.",
    )
    enabled = models.BooleanField(
        default=True, help_text="Serve and store exact-match answers."
    )
    ttl_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1)]
    )
    coalesce = models.BooleanField(
        default=True,
        help_text="Identical concurrent requests share one upstream call.",
    )
    share = models.CharField(
        max_length=10,
        choices=SHARE_CHOICES,
        default=SHARE_PROJECT,
        help_text="Which callers share cached answers.",
    )
    honor_headers = models.BooleanField(
        default=True,
        help_text="Callers may send x-nexus-cache: bypass or refresh.",
    )
    semantic_index = models.ForeignKey(
        SemanticIndex,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="Semantic cache index; empty turns the semantic cache off.",
    )
    semantic_threshold = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Overrides the index's similarity threshold.",
    )
    semantic_include_tools = models.BooleanField(
        default=False, help_text="Also serve requests that define tools semantically."
    )
    semantic_max_temperature = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0)],
        help_text="Requests with a higher temperature skip the semantic cache.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "cache policies"

    def __str__(self) -> str:
        owner = self.key or self.project or self.organization or "global"
        return f"{owner} / {self.model or 'every model'}"

    def clean(self) -> None:
        if self.key_id and self.project_id and self.key.project_id != self.project_id:
            raise ValidationError({"key": "The key does not belong to this project."})
        if self.project_id and self.organization_id:
            if self.project.organization_id != self.organization_id:
                raise ValidationError(
                    {"project": "The project does not belong to this organization."}
                )
        if self.key_id and self.organization_id:
            if self.key.organization_id != self.organization_id:
                raise ValidationError(
                    {"key": "The key does not belong to this organization."}
                )

    def save(self, *args, **kwargs) -> None:
        # The owning org follows from the key or project so purges and lists find it.
        if self.key_id and not self.organization_id:
            self.organization_id = self.key.organization_id
        if self.project_id and not self.organization_id:
            self.organization_id = self.project.organization_id
        super().save(*args, **kwargs)


class CachePurge(models.Model):
    """A purge of cached responses: of one organization, or of all when it has none."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE
    )
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"purge of {self.organization or 'every organization'}"


class QuarantinedEntry(models.Model):
    """A cached response reported bad, never served again until released."""

    entry_id = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[0-9a-f]{64}$", "Use the 64 hex digits.")],
        help_text="The x-nexus-cache-entry response header of the bad answer.",
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE
    )
    reason = models.TextField(blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "quarantined entries"

    def __str__(self) -> str:
        return self.entry_id[:16]
