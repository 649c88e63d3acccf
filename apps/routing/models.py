from django.db import models

from apps.keys.models import VirtualKey
from apps.tenancy.models import Organization, Project


class Route(models.Model):
    """A routing rule for one model name: the strategy that picks targets, and retries.

    A route matches requests for `model` and, when set, only those of one
    organization, project or key, or with given headers or metadata. Among the
    routes that match, the lowest `priority` wins, then the most specific.
    """

    name = models.SlugField(
        max_length=100,
        unique=True,
        help_text="Shown to callers in the x-nexus-route header and used by other "
        'routes that refer to this one with {"route": "<name>"}.',
    )
    description = models.TextField(blank=True)
    model = models.CharField(
        max_length=200,
        help_text="The model name or alias callers send that this route serves.",
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="routes",
        help_text="Match only this organization's requests. Empty matches every one.",
    )
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="routes",
        help_text="Match only requests made with keys of this project.",
    )
    key = models.ForeignKey(
        VirtualKey,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="routes",
        help_text="Match only requests made with this virtual key.",
    )
    match_headers = models.JSONField(
        default=dict,
        blank=True,
        help_text='Request headers that must have these exact values, e.g. {"x-tier": "gold"}.',
    )
    match_metadata = models.JSONField(
        default=dict,
        blank=True,
        help_text="Entries of the request body's metadata object that must have these "
        "exact values.",
    )
    priority = models.IntegerField(
        default=100,
        help_text="Lower numbers are tried first; ties go to the route with more matchers.",
    )
    config = models.JSONField(
        help_text="The strategy tree as JSON: a model name, or "
        '{"strategy": "fallback", "targets": ["model-a", "model-b"]} and so on. '
        "See docs/routing.md.",
    )
    retries = models.PositiveSmallIntegerField(
        default=0,
        help_text="Retries of the same target on a retryable failure (connection error, "
        "timeout, 408, 429, 5xx, 529) before moving on; a target may set its own.",
    )
    backoff_seconds = models.FloatField(
        default=0.25,
        help_text="First retry backoff step in seconds; each retry doubles it, and the "
        "wait is a random share of the step (full jitter).",
    )
    max_backoff_seconds = models.FloatField(
        default=8.0,
        help_text="Largest backoff step in seconds. A provider retry-after longer than "
        "this moves on to the next target instead of waiting.",
    )
    timeout_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="Limit in seconds on each wait of one attempt: for the response "
        "headers and body, or for the headers and then the first stream data. Empty "
        "uses NEXUS_UPSTREAM_TIMEOUT.",
    )
    failover_statuses = models.JSONField(
        default=list,
        blank=True,
        help_text="Extra HTTP statuses, such as 400 or 404, that move on to the next "
        "target without retrying. Retryable failures always move on.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "priority", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.routing.validation import validate_route

        validate_route(self)
