from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.iam.changelog import record_change
from apps.iam.models import AdminAuditLog, Membership, ResourceTags, UserTags
from apps.iam.policies import create_policy
from apps.iam.services import create_group
from apps.iam.tokens import issue_service_token
from apps.keys.services import issue_key
from apps.providers.models import Model, ProviderConnection
from tests.iam.factories import make_member, make_org, make_project, make_user, unique

ROLES = ["org_owner", "org_admin", "project_admin", "developer", "auditor", "viewer"]


@dataclass
class World:
    """Two organizations; org has one member per role and one row of every kind."""

    org: object
    other_org: object
    project: object
    members: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)


def _connection() -> ProviderConnection:
    return ProviderConnection.objects.create(
        name=unique("conn"), provider_type="openai", base_url="http://127.0.0.1:9/v1"
    )


@pytest.fixture
def world(db) -> World:
    org, other_org = make_org(), make_org()
    project = make_project(org)
    state = World(org=org, other_org=other_org, project=project)
    for role in ROLES:
        scope = project if role == "project_admin" else None
        state.members[role] = make_member(org, role, project=scope)
    state.members["outsider"] = make_member(other_org, "org_owner")
    state.members["superuser"] = get_user_model().objects.create_superuser(
        username=unique("root"), password=None
    )

    target = make_user()
    connection = _connection()
    state.rows = {
        "key_project": issue_key(
            organization=org, project=project, name="in-project"
        ).key,
        "key_org": issue_key(organization=org, name="org-wide").key,
        "connection": connection,
        "spare_connection": _connection(),
        "model": Model.objects.create(
            name=unique("model"),
            connection=connection,
            upstream_model="gpt-test",
            input_price=Decimal("1.5"),
            output_price=Decimal("3"),
        ),
        "event": AuditEvent.objects.create(
            request_id=unique("req"),
            created_at=datetime.now(UTC),
            organization=org,
            project=project,
            ingress="openai_chat",
            status_code=200,
        ),
        "log": record_change(
            actor=None,
            action="tenancy:project.create",
            resource=f"nrn:nexus:tenancy:{org.slug}/{project.slug}:project/{project.pk}",
            organization_id=org.pk,
            before=None,
            after={"name": project.name},
            channel=AdminAuditLog.CHANNEL_SYSTEM,
        ),
        "target": target,
        "membership": Membership.objects.create(
            user=target, organization=org, role="viewer"
        ),
        "group": create_group(org, unique("group"), roles=[("viewer", None)]),
        "policy": create_policy(
            org,
            {
                "name": unique("policy"),
                "effect": "allow",
                "principals": ["user:0"],
                "actions": ["keys:key.read"],
                "resources": ["nrn:nexus:keys:*"],
            },
        ),
        "token": issue_service_token(org, name="ci", scopes=["keys:key.read"]).token,
        "user_tags": UserTags.objects.create(
            organization=org, user=target, tags={"team": "a"}
        ),
        "resource_tags": ResourceTags.objects.create(
            organization=org,
            resource=f"nrn:nexus:keys:{org.slug}:key/0",
            tags={"env": "dev"},
        ),
    }
    return state


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def token_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client
