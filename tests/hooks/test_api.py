"""The hooks REST API: per-organization hooks, validation and the policy test."""

import pytest
from rest_framework.test import APIClient

from apps.hooks.models import Hook
from tests.iam.factories import make_member, make_org

URL = "/api/v1/hooks/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def org(db):
    return make_org()


@pytest.fixture
def owner(org) -> APIClient:
    return client_for(make_member(org, "org_owner"))


@pytest.fixture
def outsider(db) -> APIClient:
    return client_for(make_member(make_org(), "org_owner"))


def hook_body(org, **fields) -> dict:
    body = {
        "organization": org.slug,
        "name": "pii-in",
        "kind": "pii",
        "stage": "request",
        "options": {"entities": ["email"]},
    }
    body.update(fields)
    return body


def test_owner_creates_and_reads_hook(owner, org):
    created = owner.post(URL, hook_body(org), format="json")

    assert created.status_code == 201, created.content
    row = Hook.objects.get(pk=created.json()["id"])
    assert row.organization == org
    assert owner.get(f"{URL}{row.pk}/").json()["options"] == {"entities": ["email"]}


def test_unknown_option_gets_field_error(owner, org):
    response = owner.post(
        URL, hook_body(org, options={"entites": ["email"]}), format="json"
    )

    assert response.status_code == 400
    assert "Unknown option 'entites'" in str(
        response.json()["error"]["details"]["options"]
    )


def test_other_organization_gets_404(owner, outsider, org):
    row = Hook.objects.create(name="theirs", kind="pii", organization=org)

    assert outsider.get(f"{URL}{row.pk}/").status_code == 404
    assert (
        outsider.patch(f"{URL}{row.pk}/", {"enabled": False}, format="json").status_code
        == 404
    )
    assert outsider.delete(f"{URL}{row.pk}/").status_code == 404
    assert outsider.post(URL, hook_body(org), format="json").status_code == 404


def test_policy_test_runs_the_organizations_hooks(owner, org):
    Hook.objects.create(name="pii", kind="pii", organization=org, priority=10)
    Hook.objects.create(
        name="words",
        kind="rules",
        organization=org,
        priority=20,
        options={"rules": [{"id": "w:1", "keyword": "falcon"}]},
    )
    Hook.objects.create(
        name="other-org",
        kind="rules",
        organization=make_org(),
        options={"rules": [{"id": "x", "keyword": "mail"}]},
    )

    response = owner.post(
        f"{URL}test/",
        {"organization": org.slug, "text": "mail jane@example.test"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["decision"] == "redact"
    assert body["output"] == "mail [EMAIL]"
    assert [record["hook"] for record in body["records"]] == ["pii", "words"]
    assert body["records"][0]["rule_ids"] == ["pii.email"]
