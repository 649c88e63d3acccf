from datetime import timedelta

from django.utils import timezone

from apps.iam import nrn
from apps.iam.evaluator import Evaluator, authorize
from apps.iam.policies import create_policy
from apps.iam.services import create_group, set_group_members
from apps.iam.tokens import issue_service_token, revoke_service_token
from tests.iam.factories import make_member, make_project, make_user


def key_name(org, key_id=1, project=None):
    return nrn.build("keys", org.slug, "key", key_id, project.slug if project else "")


def test_role_grants_permission(org):
    developer = make_member(org, "developer")

    decision = authorize(developer, "keys:key.create", key_name(org, "*"))

    assert decision.allowed
    assert decision.reason == "role developer"


def test_role_without_permission_is_denied(org):
    viewer = make_member(org, "viewer")

    decision = authorize(viewer, "keys:key.create", key_name(org, "*"))

    assert not decision.allowed


def test_non_member_is_denied(org, other_org):
    outsider = make_member(other_org, "org_owner")

    decision = authorize(outsider, "keys:key.read", key_name(org))

    assert not decision.allowed
    assert decision.reason == "not a member of the organization"


def test_project_admin_covers_only_its_project(org, project):
    other = make_project(org)
    admin = make_member(org, "project_admin", project=project)

    assert authorize(admin, "keys:key.delete", key_name(org, 1, project))
    assert not authorize(admin, "keys:key.delete", key_name(org, 2, other))
    assert not authorize(admin, "keys:key.delete", key_name(org, 3))


def test_group_role_grants_permission(org):
    user = make_user()
    group = create_group(org, "auditors", roles=[("auditor", None)])
    set_group_members(group, [user])

    decision = authorize(
        user, "audit:event.read", nrn.build("audit", org.slug, "event", 9)
    )

    assert decision.allowed


def test_inactive_user_is_denied(org):
    owner = make_member(org, "org_owner", is_active=False)

    assert not authorize(owner, "keys:key.read", key_name(org))


def test_superuser_is_allowed(org):
    root = make_user(is_superuser=True)

    assert authorize(
        root,
        "tenancy:organization.delete",
        nrn.build("tenancy", org.slug, "organization", org.pk),
    )


def test_anonymous_is_denied(org):
    assert not authorize(None, "keys:key.read", key_name(org))


def test_platform_model_is_readable_by_members(org):
    developer = make_member(org, "developer")

    assert authorize(developer, "providers:model.read", "nrn:nexus:providers::model/1")


def test_platform_writes_need_superuser(org):
    owner = make_member(org, "org_owner")

    decision = authorize(
        owner, "providers:connection.update", "nrn:nexus:providers::connection/1"
    )

    assert not decision.allowed
    assert "superusers" in decision.reason


def test_platform_audit_event_needs_superuser(org):
    owner = make_member(org, "org_owner")

    assert not authorize(owner, "audit:event.read", "nrn:nexus:audit::event/1")


def test_token_scope_allows_matching_permission(org):
    token = issue_service_token(org, name="ci", scopes=["keys:*"]).token

    assert authorize(token, "keys:key.rotate", key_name(org))
    assert not authorize(
        token, "iam:policy.read", nrn.build("iam", org.slug, "policy", 1)
    )


def test_token_is_limited_to_its_org(org, other_org):
    token = issue_service_token(org, name="ci", scopes=["keys:*"]).token

    assert not authorize(token, "keys:key.read", key_name(other_org))


def test_revoked_token_is_denied(org):
    token = issue_service_token(org, name="ci", scopes=["keys:*"]).token
    revoke_service_token(token)

    decision = authorize(token, "keys:key.read", key_name(org))

    assert not decision.allowed
    assert decision.reason == "service token is revoked or expired"


def test_expired_token_is_denied(org):
    past = timezone.now() - timedelta(minutes=1)
    token = issue_service_token(
        org, name="ci", scopes=["keys:*"], expires_at=past
    ).token

    assert not authorize(token, "keys:key.read", key_name(org))


def deny_keys(org, principals, **extra):
    document = {
        "name": "deny keys",
        "effect": "deny",
        "principals": principals,
        "actions": ["keys:*"],
        "resources": [f"nrn:nexus:keys:{org.slug}:*"],
    }
    document.update(extra)
    return create_policy(org, document)


def test_explicit_deny_beats_owner_role(org):
    owner = make_member(org, "org_owner")
    policy = deny_keys(org, ["*"])

    decision = authorize(owner, "keys:key.read", key_name(org))

    assert not decision.allowed
    assert decision.policy_id == policy.pk


def test_deny_policy_applies_only_to_its_principals(org):
    developer = make_member(org, "developer")
    viewer = make_member(org, "viewer")
    deny_keys(org, ["role:viewer"])

    assert authorize(developer, "keys:key.read", key_name(org))
    assert not authorize(viewer, "keys:key.read", key_name(org))


def test_deny_policy_by_group(org):
    developer = make_member(org, "developer")
    group = create_group(org, "contractors")
    set_group_members(group, [developer])
    deny_keys(org, [f"group:{group.pk}"])

    assert not authorize(developer, "keys:key.read", key_name(org))


def test_deny_policy_by_token(org):
    token = issue_service_token(org, name="ci", scopes=["keys:*"]).token
    deny_keys(org, [f"token:{token.pk}"])

    assert not authorize(token, "keys:key.read", key_name(org))


def test_deny_policy_by_user_leaves_others(org):
    first = make_member(org, "developer")
    second = make_member(org, "developer")
    deny_keys(org, [f"user:{first.pk}"])

    assert not authorize(first, "keys:key.read", key_name(org))
    assert authorize(second, "keys:key.read", key_name(org))


def test_disabled_policy_is_ignored(org):
    owner = make_member(org, "org_owner")
    deny_keys(org, ["*"], enabled=False)

    assert authorize(owner, "keys:key.read", key_name(org))


def test_allow_policy_adds_permission(org):
    auditor = make_member(org, "auditor")
    policy = create_policy(
        org,
        {
            "name": "auditors read keys",
            "effect": "allow",
            "principals": ["role:auditor"],
            "actions": ["keys:key.read"],
            "resources": [f"nrn:nexus:keys:{org.slug}:key/*"],
        },
    )

    decision = authorize(auditor, "keys:key.read", key_name(org))

    assert decision.allowed
    assert decision.policy_id == policy.pk
    assert not authorize(auditor, "keys:key.create", key_name(org))


def test_policy_of_other_org_does_not_apply(org, other_org):
    owner = make_member(org, "org_owner")
    deny_keys(other_org, ["*"], resources=["nrn:nexus:*"])

    assert authorize(owner, "keys:key.read", key_name(org))


def test_evaluator_reuses_its_view(org, django_assert_max_num_queries):
    developer = make_member(org, "developer")
    evaluator = Evaluator(developer)
    evaluator.authorize("keys:key.read", key_name(org))

    with django_assert_max_num_queries(0):
        for key_id in range(20):
            evaluator.authorize("keys:key.read", key_name(org, key_id))
