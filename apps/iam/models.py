from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.iam.roles import ROLE_CHOICES
from apps.tenancy.models import Organization, Project

SOURCE_MANUAL = "manual"
SOURCE_OIDC = "oidc"
SOURCE_SCIM = "scim"
SOURCE_CHOICES = [
    (SOURCE_MANUAL, "Manual"),
    (SOURCE_OIDC, "OpenID Connect login"),
    (SOURCE_SCIM, "SCIM provisioning"),
]


class Membership(models.Model):
    """One role granted to a user in an organization, optionally limited to a project.

    The same role may be granted by several sources (manual, OIDC, SCIM). Each source
    owns its own row, so a sync from one source never removes another's grant.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="memberships",
        help_text="Set only for project-scoped roles (project admin).",
    )
    source = models.CharField(
        max_length=16, choices=SOURCE_CHOICES, default=SOURCE_MANUAL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "user__username", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization", "role", "source"],
                condition=Q(project__isnull=True),
                name="iam_membership_unique_org_grant",
            ),
            models.UniqueConstraint(
                fields=["user", "organization", "role", "project", "source"],
                condition=Q(project__isnull=False),
                name="iam_membership_unique_project_grant",
            ),
        ]

    def __str__(self) -> str:
        scope = f"/{self.project.slug}" if self.project_id else ""
        return f"{self.user} {self.role} in {self.organization.slug}{scope}"


class Group(models.Model):
    """A set of users in one organization; every member holds the group's roles."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="iam_groups"
    )
    name = models.CharField(max_length=200)
    source = models.CharField(
        max_length=16, choices=SOURCE_CHOICES, default=SOURCE_MANUAL
    )
    external_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="The identity provider's id (SCIM externalId).",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="iam_groups"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="iam_group_name_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name}"


class GroupRole(models.Model):
    """One role a group grants to its members, optionally limited to a project."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["group", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "role"],
                condition=Q(project__isnull=True),
                name="iam_grouprole_unique_org_grant",
            ),
            models.UniqueConstraint(
                fields=["group", "role", "project"],
                condition=Q(project__isnull=False),
                name="iam_grouprole_unique_project_grant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.role}"


class Policy(models.Model):
    """An allow or deny rule on top of roles, with attribute conditions.

    A policy applies when one of its principals matches the actor, one of its actions
    matches the permission, one of its resources matches the resource name and every
    condition holds. A matching deny wins over every allow.
    """

    EFFECT_ALLOW = "allow"
    EFFECT_DENY = "deny"
    EFFECT_CHOICES = [(EFFECT_ALLOW, "Allow"), (EFFECT_DENY, "Deny")]

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="iam_policies"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    effect = models.CharField(max_length=8, choices=EFFECT_CHOICES)
    principals = models.JSONField(
        default=list,
        help_text='Who it applies to: "*", "user:<id>", "group:<id>", "role:<role>" '
        'or "token:<id>".',
    )
    actions = models.JSONField(
        default=list, help_text='Permission globs, for example ["keys:*"].'
    )
    resources = models.JSONField(
        default=list,
        help_text='Resource name globs, for example ["nrn:nexus:keys:acme:key/*"].',
    )
    conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text="Conditions that must all hold: source_ip_in, source_ip_not_in, "
        "utc_time_in, utc_time_not_in, resource_tags, user_tags, mfa.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization__name", "name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="iam_policy_name_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name} ({self.effect})"


class UserTags(models.Model):
    """Tags on a user inside one organization, matched by `user_tags` conditions."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="iam_tags"
    )
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "user tags"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="iam_usertags_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization.slug}"


class ResourceTags(models.Model):
    """Tags on any resource, keyed by its resource name, matched by `resource_tags`."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+"
    )
    resource = models.CharField(max_length=500, unique=True)
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["resource"]
        verbose_name_plural = "resource tags"

    def __str__(self) -> str:
        return self.resource


class ServiceToken(models.Model):
    """An API credential for automation, limited to one organization and a scope list.

    Only the HMAC-SHA256 digest is stored; the token is shown once, when it is created.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="service_tokens"
    )
    name = models.CharField(max_length=200)
    scopes = models.JSONField(
        default=list, help_text="Permissions or permission globs."
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
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


class AdminAuditLog(models.Model):
    """One change made through the admin or the REST API, with secrets masked.

    Foreign keys carry no database constraint so log rows outlive what they name.
    """

    CHANNEL_API = "api"
    CHANNEL_ADMIN = "admin"
    CHANNEL_SYSTEM = "system"
    CHANNEL_CHOICES = [
        (CHANNEL_API, "REST API"),
        (CHANNEL_ADMIN, "Django admin"),
        (CHANNEL_SYSTEM, "System"),
    ]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_token = models.ForeignKey(
        ServiceToken,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor = models.CharField(
        max_length=200, help_text="The actor's name when the change ran."
    )
    channel = models.CharField(max_length=8, choices=CHANNEL_CHOICES)
    action = models.CharField(max_length=64)
    resource = models.CharField(max_length=500)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.resource}"
