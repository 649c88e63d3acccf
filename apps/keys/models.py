from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.tenancy.models import Organization, Project


class VirtualKey(models.Model):
    """A credential that applications send to the gateway instead of a provider key.

    Only the HMAC-SHA256 digest of the key is stored; the key itself is shown once,
    when it is issued.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="virtual_keys"
    )
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="virtual_keys",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="virtual_keys",
        help_text="The person this key belongs to, if it is a personal key.",
    )
    name = models.CharField(max_length=200)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Public model names or aliases this key may call. Empty allows every model.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
