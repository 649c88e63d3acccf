from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.iam.errors import InvalidRoleError
from apps.iam.models import SOURCE_SCIM, Group
from apps.iam.roles import ROLE_CHOICES
from apps.iam.services import validate_role
from apps.tenancy.models import Organization, Project


class ClaimMapping(models.Model):
    """One value of the identity provider's groups claim and what it gives.

    A user whose groups claim contains claim_value holds role in the organization
    (or project) and is a member of group, for as long as the claim stays. Every
    login re-syncs both. A login whose claim values give no role is rejected.
    """

    claim_value = models.CharField(
        max_length=255,
        db_index=True,
        help_text="A value of the groups claim, compared exactly (case-sensitive).",
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="sso_mappings"
    )
    role = models.CharField(
        max_length=32,
        choices=ROLE_CHOICES,
        blank=True,
        help_text="The role granted. Leave empty to map the value to a group only.",
    )
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set only for project-scoped roles (project admin).",
    )
    group = models.ForeignKey(
        Group,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sso_mappings",
        help_text="An IAM group of the organization that the user joins; the user "
        "then holds the group's roles.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["claim_value", "organization__name", "role"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="") | Q(group__isnull=False),
                name="sso_claimmapping_role_or_group",
            )
        ]

    def clean(self) -> None:
        if not self.role and self.group_id is None:
            raise ValidationError("Choose a role, a group or both.")
        if self.organization_id is None:
            return
        if self.role:
            try:
                validate_role(self.role, self.organization, self.project)
            except InvalidRoleError as exc:
                raise ValidationError({exc.param or "role": exc.message}) from None
        elif self.project_id is not None:
            raise ValidationError({"project": "A project needs a project-scoped role."})
        if self.group_id is not None:
            if self.group.organization_id != self.organization_id:
                raise ValidationError(
                    {"group": "The group belongs to another organization."}
                )
            if self.group.source == SOURCE_SCIM:
                raise ValidationError(
                    {"group": "SCIM provisioning manages this group's members."}
                )

    def __str__(self) -> str:
        target = self.role or f"group {self.group_id}"
        return f"{self.claim_value} -> {target} in {self.organization.slug}"


class OidcIdentity(models.Model):
    """The link from an identity provider's subject to a Nexus user."""

    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="oidc_identities",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "OpenID Connect identity"
        verbose_name_plural = "OpenID Connect identities"
        ordering = ["issuer", "subject"]
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="sso_identity_unique_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
