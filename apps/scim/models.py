import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.iam.models import Group
from apps.tenancy.models import Organization


class ScimToken(models.Model):
    """The bearer token an organization's identity provider provisions with.

    Only the HMAC-SHA256 digest is stored; the token is shown once, when it is
    created. Every request made with it is limited to its organization.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_tokens"
    )
    name = models.CharField(max_length=200)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "SCIM token"
        ordering = ["organization__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ScimUser(models.Model):
    """A user provisioned by one organization's identity provider.

    The Nexus user carries the username, names, primary email and active flag; this
    row keeps the SCIM id and the attributes as the client sent them, so they read
    back unchanged. A user is provisioned by at most one organization.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_users"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="scim_identity",
    )
    scim_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    display_name = models.CharField(max_length=255, null=True, blank=True)
    name = models.JSONField(null=True, blank=True)
    emails = models.JSONField(default=list, blank=True)
    # None is unassigned, which leaves the user active.
    active = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SCIM user"
        ordering = ["organization__name", "created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization.slug}"


class ScimGroup(models.Model):
    """The SCIM identity of an IAM group that an identity provider manages."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_groups"
    )
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="scim")
    scim_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SCIM group"
        ordering = ["organization__name", "created_at"]

    def __str__(self) -> str:
        return str(self.group)


def get_scim_user_model() -> type[ScimUser]:
    """Return the model django-scim2 serves as Users."""
    return ScimUser
