"""The one authorization decision point for the REST API and the admin.

`authorize(actor, permission, resource, context)` combines role grants (or a service
token's scopes) with the organization's policies:

1. Inactive users, revoked or expired tokens and non-members are denied. Superusers
   are allowed everything.
2. A deny policy that matches the actor, permission and resource, and whose
   conditions hold, denies. Explicit deny wins over every allow.
3. A role grant whose scope covers the resource, or a token scope, allows.
4. An allow policy that matches and whose conditions all hold allows.
5. Anything else is denied.

Platform resources (empty org segment) are changed by superusers only, because every
organization shares them. The types in SHARED_PLATFORM_TYPES (provider connections
and models) are readable by anyone allowed to read them in one of their
organizations. Other platform resources, such as audit events without an
organization, are for superusers only.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from apps.iam import conditions, nrn, selectors
from apps.iam.context import AccessContext
from apps.iam.models import Policy, ServiceToken
from apps.iam.permissions import split
from apps.iam.roles import permissions_of
from apps.tenancy.models import Organization, Project

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | ServiceToken

SHARED_PLATFORM_TYPES = frozenset({("providers", "connection"), ("providers", "model")})


@dataclass(frozen=True)
class Decision:
    """The outcome of one authorization check and the rule that decided it."""

    allowed: bool
    reason: str
    policy_id: int | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass
class _OrgView:
    """The actor's grants, groups and the policies inside one organization."""

    organization: Organization
    grants: list[selectors.RoleGrant]
    project_slugs: dict[int, str]
    group_ids: set[int]
    policies: list[Policy]


def authorize(
    actor: Actor | None,
    permission: str,
    resource: nrn.Nrn | str,
    context: AccessContext | None = None,
) -> Decision:
    """Decide whether actor may perform permission on resource."""
    return Evaluator(actor, context).authorize(permission, resource)


class Evaluator:
    """Authorizes one actor, caching its grants and policies per organization.

    Create one per request; the cache does not see changes made after it loaded.
    """

    def __init__(
        self, actor: Actor | None, context: AccessContext | None = None
    ) -> None:
        self.actor = actor
        self.context = context or AccessContext()
        self._views: dict[str, _OrgView | None] = {}

    @property
    def token(self) -> ServiceToken | None:
        return self.actor if isinstance(self.actor, ServiceToken) else None

    @property
    def user(self) -> AbstractBaseUser | None:
        if self.actor is None or isinstance(self.actor, ServiceToken):
            return None
        return self.actor

    def authorize(self, permission: str, resource: nrn.Nrn | str) -> Decision:
        """Decide whether the actor may perform permission on resource."""
        name = resource if isinstance(resource, nrn.Nrn) else nrn.parse(resource)
        decision = self._decide(permission, name)
        logger.debug(
            "authorization %s for %s on %s: %s",
            "allowed" if decision.allowed else "denied",
            permission,
            name,
            decision.reason,
            extra={
                "request_id": self.context.request_id,
                "policy_id": decision.policy_id,
            },
        )
        return decision

    def _decide(self, permission: str, name: nrn.Nrn) -> Decision:
        refusal = self._check_identity()
        if refusal is not None:
            return refusal
        if self.user is not None and self.user.is_superuser:
            return Decision(True, "superuser")
        if name.is_platform:
            return self._decide_platform(permission, name)
        view = self.view(name.org)
        if view is None:
            return Decision(False, "not a member of the organization")
        return self._decide_in_org(view, permission, name, platform=False)

    def _check_identity(self) -> Decision | None:
        if self.actor is None:
            return Decision(False, "not authenticated")
        if self.token is not None and not self.token.is_active:
            return Decision(False, "service token is revoked or expired")
        if self.user is not None and not (
            self.user.is_authenticated and self.user.is_active
        ):
            return Decision(False, "user is inactive")
        return None

    def _decide_platform(self, permission: str, name: nrn.Nrn) -> Decision:
        _, _, verb = split(permission)
        if verb != "read":
            return Decision(False, "platform resources are changed by superusers only")
        if (name.service, name.type) not in SHARED_PLATFORM_TYPES:
            return Decision(False, "this platform resource is for superusers only")
        denial = Decision(False, "no organization grants this permission")
        for view in self._all_views():
            decision = self._decide_in_org(view, permission, name, platform=True)
            if decision.allowed:
                return decision
            denial = decision
        return denial

    def _decide_in_org(
        self, view: _OrgView, permission: str, name: nrn.Nrn, *, platform: bool
    ) -> Decision:
        facts = self._facts(view, name)
        applicable = [
            p for p in view.policies if self._policy_matches(view, p, permission, name)
        ]
        for policy in applicable:
            if policy.effect == Policy.EFFECT_DENY and conditions.evaluate(
                policy.conditions, facts, deny=True
            ):
                return Decision(False, f"denied by policy {policy.name}", policy.pk)
        granted = self._granted_by(view, permission, name, platform=platform)
        if granted:
            return Decision(True, granted)
        for policy in applicable:
            if policy.effect == Policy.EFFECT_ALLOW and conditions.evaluate(
                policy.conditions, facts, deny=False
            ):
                return Decision(True, f"allowed by policy {policy.name}", policy.pk)
        return Decision(False, f"no role or policy grants {permission}")

    def _granted_by(
        self, view: _OrgView, permission: str, name: nrn.Nrn, *, platform: bool
    ) -> str:
        if self.token is not None:
            if any(_glob(scope, permission) for scope in self.token.scopes):
                return "service token scope"
            return ""
        for grant in view.grants:
            if permission not in permissions_of(grant.role):
                continue
            if platform or grant.project_id is None:
                return f"role {grant.role}"
            if (
                view.project_slugs.get(grant.project_id) == name.project
                and name.project
            ):
                return f"role {grant.role} on project {name.project}"
        return ""

    def _policy_matches(
        self, view: _OrgView, policy: Policy, permission: str, name: nrn.Nrn
    ) -> bool:
        if not any(_glob(action, permission) for action in policy.actions):
            return False
        if not nrn.matches_any(policy.resources, name):
            return False
        return any(
            self._principal_matches(view, principal) for principal in policy.principals
        )

    def _principal_matches(self, view: _OrgView, principal: str) -> bool:
        if principal == "*":
            return True
        kind, _, value = principal.partition(":")
        if self.token is not None:
            return kind == "token" and value == str(self.token.pk)
        if kind == "user":
            return value == str(self.user.pk)
        if kind == "group":
            return value.isdigit() and int(value) in view.group_ids
        if kind == "role":
            return any(grant.role == value for grant in view.grants)
        return False

    def _facts(self, view: _OrgView, name: nrn.Nrn) -> conditions.Facts:
        user = self.user
        resource = str(name)

        def load_user_tags() -> dict[str, Any]:
            if user is None:
                return {}
            return selectors.get_user_tags(user, view.organization.pk)

        def load_resource_tags() -> dict[str, Any]:
            return selectors.get_resource_tags(resource)

        return conditions.Facts(
            source_ip=self.context.source_ip,
            now=self.context.clock(),
            claims=self.context.claims if user is not None else {},
            load_user_tags=load_user_tags,
            load_resource_tags=load_resource_tags,
        )

    def policies_for(self, org_slug: str, permission: str) -> list[Policy]:
        """Return the organization's policies whose actions and principals match."""
        view = self.view(org_slug)
        if view is None:
            return []
        return [
            policy
            for policy in view.policies
            if any(_glob(action, permission) for action in policy.actions)
            and any(
                self._principal_matches(view, principal)
                for principal in policy.principals
            )
        ]

    def project_grants(self, org_slug: str) -> dict[int, str]:
        """Return the projects (id to slug) the actor holds project-scoped roles in."""
        view = self.view(org_slug)
        return dict(view.project_slugs) if view is not None else {}

    def view(self, org_slug: str) -> _OrgView | None:
        """Return the actor's grants and the policies in the organization, or None."""
        if org_slug not in self._views:
            self._views[org_slug] = self._load_view(org_slug)
        return self._views[org_slug]

    def _load_view(self, org_slug: str) -> _OrgView | None:
        if self.token is not None:
            organization = self.token.organization
            if organization.slug != org_slug:
                return None
            return _OrgView(
                organization,
                [],
                {},
                set(),
                selectors.list_enabled_policies(organization.pk),
            )
        organization = Organization.objects.filter(slug=org_slug).first()
        if organization is None:
            return None
        grants = selectors.roles_for(self.user, organization)
        if not grants:
            return None
        project_ids = {grant.project_id for grant in grants if grant.project_id}
        slugs = dict(
            Project.objects.filter(pk__in=project_ids).values_list("pk", "slug")
        )
        return _OrgView(
            organization,
            grants,
            slugs,
            selectors.list_group_ids(self.user, organization),
            selectors.list_enabled_policies(organization.pk),
        )

    def _all_views(self) -> Iterable[_OrgView]:
        if self.token is not None:
            slugs = [self.token.organization.slug]
        else:
            slugs = list(
                selectors.list_member_organizations(self.user).values_list(
                    "slug", flat=True
                )
            )
        for slug in slugs:
            view = self.view(slug)
            if view is not None:
                yield view


def _glob(pattern: str, permission: str) -> bool:
    return fnmatchcase(permission, pattern)
