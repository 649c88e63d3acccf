import pytest

from apps.iam.errors import (
    EscalationError,
    InvalidPolicyError,
    InvalidScopeError,
    InvalidTagsError,
)
from apps.iam.policies import (
    create_policy,
    delete_policy,
    set_resource_tags,
    update_policy,
)
from apps.iam.services import create_group
from apps.iam.tokens import issue_service_token
from tests.iam.factories import make_member


def document(org, actions, effect="allow", **extra):
    body = {
        "name": "p",
        "effect": effect,
        "principals": ["*"],
        "actions": actions,
        "resources": [f"nrn:nexus:keys:{org.slug}:*"],
    }
    body.update(extra)
    return body


def test_admin_cannot_allow_org_delete(org):
    admin = make_member(org, "org_admin")

    with pytest.raises(EscalationError):
        create_policy(org, document(org, ["tenancy:*"]), actor=admin)


def test_admin_can_allow_what_it_holds(org):
    admin = make_member(org, "org_admin")

    policy = create_policy(org, document(org, ["keys:*"]), actor=admin)

    assert policy.pk


def test_update_checks_new_actions(org):
    admin = make_member(org, "org_admin")
    policy = create_policy(org, document(org, ["keys:key.read"]), actor=admin)

    with pytest.raises(EscalationError):
        update_policy(policy, {"actions": ["*"]}, actor=admin)

    policy.refresh_from_db()
    assert policy.actions == ["keys:key.read"]


def test_restricted_user_cannot_delete_its_deny(org):
    owner = make_member(org, "org_owner")
    admin = make_member(org, "org_admin")
    deny = create_policy(
        org,
        document(
            org,
            ["keys:*"],
            effect="deny",
            principals=["role:org_admin"],
            conditions={"mfa": False},
        ),
        actor=owner,
    )

    with pytest.raises(EscalationError):
        delete_policy(deny, actor=admin)

    delete_policy(deny, actor=owner)


def test_token_scopes_cannot_exceed_creator(org):
    developer = make_member(org, "developer")

    with pytest.raises(EscalationError):
        issue_service_token(org, name="x", scopes=["keys:key.delete"], actor=developer)


def test_token_scopes_within_creator_are_issued(org):
    developer = make_member(org, "developer")

    issued = issue_service_token(
        org, name="x", scopes=["keys:key.read"], actor=developer
    )

    assert issued.plaintext.startswith("nst_")
    assert issued.token.created_by == developer


def test_token_cannot_mint_broader_token(org):
    parent = issue_service_token(
        org, name="parent", scopes=["iam:token.create", "keys:key.read"]
    ).token

    with pytest.raises(EscalationError):
        issue_service_token(org, name="child", scopes=["keys:*"], actor=parent)


@pytest.mark.parametrize("scopes", [[], ["nothing:matches"], "keys:*"])
def test_invalid_scopes_are_rejected(org, scopes):
    with pytest.raises(InvalidScopeError):
        issue_service_token(org, name="x", scopes=scopes)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("effect", "maybe"),
        ("principals", []),
        ("principals", ["role:wizard"]),
        ("principals", ["group:999999"]),
        ("actions", ["nothing:*"]),
        ("resources", ["arn:aws:*"]),
    ],
)
def test_invalid_policies_are_rejected(org, field, value):
    body = document(org, ["keys:*"])
    body[field] = value

    with pytest.raises(InvalidPolicyError):
        create_policy(org, body)


def test_group_of_other_org_is_not_a_principal(org, other_org):
    foreign = create_group(other_org, "foreign")

    with pytest.raises(InvalidPolicyError):
        create_policy(
            org, document(org, ["keys:*"], principals=[f"group:{foreign.pk}"])
        )


def test_resource_tags_stay_in_their_org(org, other_org):
    with pytest.raises(InvalidTagsError):
        set_resource_tags(org, f"nrn:nexus:keys:{other_org.slug}:key/1", {"env": "dev"})


def test_tag_values_must_be_scalars(org):
    with pytest.raises(InvalidTagsError):
        set_resource_tags(org, f"nrn:nexus:keys:{org.slug}:key/1", {"env": ["dev"]})
