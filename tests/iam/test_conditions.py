"""Each policy condition with an allow case and a deny case."""

from datetime import UTC, datetime

import pytest

from apps.iam import nrn
from apps.iam.context import AccessContext
from apps.iam.errors import InvalidPolicyError
from apps.iam.evaluator import authorize
from apps.iam.policies import create_policy, set_resource_tags, set_user_tags
from tests.iam.factories import make_member

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)


def key(org, key_id=1):
    return nrn.build("keys", org.slug, "key", key_id)


def policy(org, effect, conditions, principals=("*",)):
    return create_policy(
        org,
        {
            "name": f"{effect} {sorted(conditions)}",
            "effect": effect,
            "principals": list(principals),
            "actions": ["keys:key.read"],
            "resources": [f"nrn:nexus:keys:{org.slug}:key/*"],
            "conditions": conditions,
        },
    )


@pytest.fixture
def viewer(org):
    return make_member(org, "viewer")


@pytest.fixture
def auditor(org):
    # An auditor holds no key permission, so only an allow policy can grant one.
    return make_member(org, "auditor")


def test_source_ip_in_allows_inside(org, auditor):
    policy(org, "allow", {"source_ip_in": ["10.0.0.0/8"]})

    assert authorize(
        auditor, "keys:key.read", key(org), AccessContext(source_ip="10.1.2.3")
    )


def test_source_ip_in_rejects_outside(org, auditor):
    policy(org, "allow", {"source_ip_in": ["10.0.0.0/8"]})

    assert not authorize(
        auditor, "keys:key.read", key(org), AccessContext(source_ip="192.0.2.1")
    )


def test_source_ip_not_in_deny_blocks_outside(org, viewer):
    policy(org, "deny", {"source_ip_not_in": ["10.0.0.0/8", "2001:db8::/32"]})

    assert not authorize(
        viewer, "keys:key.read", key(org), AccessContext(source_ip="192.0.2.1")
    )


def test_source_ip_not_in_deny_passes_inside(org, viewer):
    policy(org, "deny", {"source_ip_not_in": ["10.0.0.0/8", "2001:db8::/32"]})

    assert authorize(
        viewer, "keys:key.read", key(org), AccessContext(source_ip="2001:db8::5")
    )


def test_unknown_ip_fails_allow_policy(org, auditor):
    policy(org, "allow", {"source_ip_in": ["0.0.0.0/0"]})

    assert not authorize(auditor, "keys:key.read", key(org), AccessContext())


def test_unknown_ip_triggers_deny_policy(org, viewer):
    policy(org, "deny", {"source_ip_not_in": ["10.0.0.0/8"]})

    assert not authorize(viewer, "keys:key.read", key(org), AccessContext())


def test_time_window_allows_inside(org, auditor):
    policy(org, "allow", {"utc_time_in": {"start": "09:00", "end": "17:00"}})

    assert authorize(auditor, "keys:key.read", key(org), AccessContext(now=NOON))


def test_time_window_rejects_outside(org, auditor):
    policy(org, "allow", {"utc_time_in": {"start": "09:00", "end": "17:00"}})

    assert not authorize(
        auditor, "keys:key.read", key(org), AccessContext(now=MIDNIGHT)
    )


def test_time_window_wraps_midnight(org, auditor):
    policy(org, "allow", {"utc_time_in": {"start": "22:00", "end": "06:00"}})

    assert authorize(auditor, "keys:key.read", key(org), AccessContext(now=MIDNIGHT))
    assert not authorize(auditor, "keys:key.read", key(org), AccessContext(now=NOON))


def test_outside_hours_deny(org, viewer):
    policy(org, "deny", {"utc_time_not_in": {"start": "09:00", "end": "17:00"}})

    assert authorize(viewer, "keys:key.read", key(org), AccessContext(now=NOON))
    assert not authorize(viewer, "keys:key.read", key(org), AccessContext(now=MIDNIGHT))


def test_resource_tags_allow_tagged(org, auditor):
    policy(org, "allow", {"resource_tags": {"env": ["dev", "test"]}})
    set_resource_tags(org, str(key(org, 1)), {"env": "dev"})

    assert authorize(auditor, "keys:key.read", key(org, 1))


def test_resource_tags_reject_other_tags(org, auditor):
    policy(org, "allow", {"resource_tags": {"env": ["dev", "test"]}})
    set_resource_tags(org, str(key(org, 2)), {"env": "prod"})

    assert not authorize(auditor, "keys:key.read", key(org, 2))
    assert not authorize(auditor, "keys:key.read", key(org, 3))


def test_resource_tags_deny_protects_prod(org, viewer):
    policy(org, "deny", {"resource_tags": {"env": "prod"}})
    set_resource_tags(org, str(key(org, 2)), {"env": "prod"})

    assert not authorize(viewer, "keys:key.read", key(org, 2))
    assert authorize(viewer, "keys:key.read", key(org, 1))


def test_user_tags_allow_matching_user(org, auditor):
    policy(org, "allow", {"user_tags": {"team": "platform"}})
    set_user_tags(auditor, org, {"team": "platform"})

    assert authorize(auditor, "keys:key.read", key(org))


def test_user_tags_reject_other_user(org, auditor):
    policy(org, "allow", {"user_tags": {"team": "platform"}})
    set_user_tags(auditor, org, {"team": "sales"})

    assert not authorize(auditor, "keys:key.read", key(org))


def test_mfa_allow_needs_amr(org, auditor):
    policy(org, "allow", {"mfa": True})

    assert authorize(
        auditor,
        "keys:key.read",
        key(org),
        AccessContext(claims={"amr": ["pwd", "mfa"]}),
    )
    assert not authorize(
        auditor, "keys:key.read", key(org), AccessContext(claims={"amr": ["pwd"]})
    )


def test_mfa_deny_without_amr(org, viewer):
    policy(org, "deny", {"mfa": False})

    assert not authorize(viewer, "keys:key.read", key(org), AccessContext())
    assert authorize(
        viewer, "keys:key.read", key(org), AccessContext(claims={"amr": ["mfa"]})
    )


def test_all_conditions_must_hold(org, auditor):
    policy(org, "allow", {"mfa": True, "source_ip_in": ["10.0.0.0/8"]})
    with_mfa = {"amr": ["mfa"]}

    assert authorize(
        auditor, "keys:key.read", key(org), AccessContext("10.0.0.1", claims=with_mfa)
    )
    assert not authorize(
        auditor, "keys:key.read", key(org), AccessContext("192.0.2.1", claims=with_mfa)
    )


@pytest.mark.parametrize(
    "conditions",
    [
        {"source_ip_in": ["not-a-cidr"]},
        {"source_ip_in": []},
        {"utc_time_in": {"start": "25:00", "end": "01:00"}},
        {"utc_time_in": {"start": "09:00"}},
        {"resource_tags": {}},
        {"mfa": "yes"},
        {"weekday": "monday"},
    ],
)
def test_malformed_conditions_are_rejected(org, conditions):
    with pytest.raises(InvalidPolicyError):
        policy(org, "allow", conditions)
