"""Write use cases for policies and the tags their conditions match.

Creating, changing or deleting a policy needs every permission its actions cover, so
nobody can grant through a policy what they do not hold, and nobody can lift a deny
policy that currently restricts them.
"""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from apps.iam import conditions, nrn
from apps.iam.context import AccessContext
from apps.iam.errors import InvalidPolicyError, InvalidTagsError
from apps.iam.escalation import ensure_can_grant
from apps.iam.evaluator import Actor
from apps.iam.models import Group, Policy, ResourceTags, ServiceToken, UserTags
from apps.iam.permissions import expand_all
from apps.iam.roles import ROLE_PERMISSIONS
from apps.tenancy.models import Organization

logger = logging.getLogger(__name__)

POLICY_FIELDS = ("name", "description", "effect", "principals", "actions", "resources")


def _string_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidPolicyError(
            f'Policy "{field}" must be a non-empty list.', param=field
        )
    if not all(isinstance(item, str) and item for item in value):
        raise InvalidPolicyError(
            f'Policy "{field}" must contain only non-empty strings.', param=field
        )
    return value


def _validate_principal(organization: Organization, principal: str) -> None:
    if principal == "*":
        return
    kind, _, value = principal.partition(":")
    if kind == "role" and value in ROLE_PERMISSIONS:
        return
    if kind == "user" and value.isdigit():
        return
    if kind == "group" and value.isdigit():
        if Group.objects.filter(pk=int(value), organization=organization).exists():
            return
        raise InvalidPolicyError(
            f"Group {value} is not in this organization.", param="principals"
        )
    if kind == "token" and value.isdigit():
        if ServiceToken.objects.filter(
            pk=int(value), organization=organization
        ).exists():
            return
        raise InvalidPolicyError(
            f"Token {value} is not in this organization.", param="principals"
        )
    raise InvalidPolicyError(
        f'Invalid principal "{principal}"; use "*", "user:<id>", "group:<id>", '
        '"role:<role>" or "token:<id>".',
        param="principals",
    )


def validate_policy(
    organization: Organization, document: dict[str, Any]
) -> frozenset[str]:
    """Raise InvalidPolicyError unless document is a valid policy; return its permissions."""
    if document.get("effect") not in (Policy.EFFECT_ALLOW, Policy.EFFECT_DENY):
        raise InvalidPolicyError(
            'Policy "effect" must be "allow" or "deny".', param="effect"
        )
    for principal in _string_list(document.get("principals"), "principals"):
        _validate_principal(organization, principal)
    actions = _string_list(document.get("actions"), "actions")
    covered = expand_all(actions)
    if not covered:
        raise InvalidPolicyError(
            f"Policy actions {actions} match no permission in the catalog.",
            param="actions",
        )
    for pattern in _string_list(document.get("resources"), "resources"):
        if not pattern.startswith(nrn.PREFIX):
            raise InvalidPolicyError(
                f'Resource pattern "{pattern}" must start with "{nrn.PREFIX}".',
                param="resources",
            )
    conditions.validate(document.get("conditions") or {})
    return covered


def create_policy(
    organization: Organization,
    document: dict[str, Any],
    *,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> Policy:
    """Create a policy from a document with the Policy fields and conditions."""
    covered = validate_policy(organization, document)
    ensure_can_grant(actor, organization, covered, context=context)

    policy = Policy.objects.create(
        organization=organization,
        conditions=document.get("conditions") or {},
        enabled=document.get("enabled", True),
        **{name: document[name] for name in POLICY_FIELDS if name in document},
    )
    logger.info("policy %s created", policy.pk, extra={"tenant_id": organization.pk})
    return policy


@transaction.atomic
def update_policy(
    policy: Policy,
    changes: dict[str, Any],
    *,
    actor: Actor | None = None,
    context: AccessContext | None = None,
) -> Policy:
    """Apply changes to a policy; the actor must hold what it covers before and after."""
    document = {
        name: getattr(policy, name)
        for name in (*POLICY_FIELDS, "conditions", "enabled")
    }
    document.update(changes)
    covered = validate_policy(policy.organization, document)
    ensure_can_grant(
        actor,
        policy.organization,
        covered | expand_all(policy.actions),
        context=context,
    )

    for name, value in document.items():
        setattr(policy, name, value if name != "conditions" else value or {})
    policy.save()
    logger.info(
        "policy %s updated", policy.pk, extra={"tenant_id": policy.organization_id}
    )
    return policy


def delete_policy(
    policy: Policy, *, actor: Actor | None = None, context: AccessContext | None = None
) -> None:
    """Delete a policy; the actor must hold every permission it covers."""
    ensure_can_grant(
        actor, policy.organization, expand_all(policy.actions), context=context
    )
    policy.delete()
    logger.info("policy deleted", extra={"tenant_id": policy.organization_id})


def _validate_tags(tags: Any) -> dict[str, Any]:
    if not isinstance(tags, dict):
        raise InvalidTagsError("Tags must be a JSON object.", param="tags")
    for name, value in tags.items():
        if not isinstance(value, (str, int, bool)):
            raise InvalidTagsError(
                f'Tag "{name}" must be a string, number or boolean.', param="tags"
            )
    return tags


def set_user_tags(
    user: AbstractBaseUser, organization: Organization, tags: dict[str, Any]
) -> UserTags:
    """Replace the user's tags in the organization."""
    row, _ = UserTags.objects.update_or_create(
        organization=organization, user=user, defaults={"tags": _validate_tags(tags)}
    )
    return row


def set_resource_tags(
    organization: Organization, resource: str, tags: dict[str, Any]
) -> ResourceTags:
    """Replace the tags on a resource of the organization."""
    name = nrn.parse(resource)
    if name.org != organization.slug:
        raise InvalidTagsError(
            f'Resource "{resource}" is not in organization "{organization.slug}".',
            param="resource",
        )
    row, _ = ResourceTags.objects.update_or_create(
        resource=str(name),
        defaults={"organization": organization, "tags": _validate_tags(tags)},
    )
    return row
