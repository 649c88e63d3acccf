"""Control-plane rows for tests, each with unique names so tests never collide."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from apps.keys.services import issue_key
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import set_credential
from apps.tenancy.models import Organization, Project


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_org(name: str | None = None) -> Organization:
    name = name or unique("org")
    return Organization.objects.create(name=name, slug=name)


def make_project(org: Organization, name: str | None = None) -> Project:
    name = name or unique("project")
    return Project.objects.create(organization=org, name=name, slug=name)


def make_connection(
    provider_type: str, base_url: str, credential: str = "sk-upstream", **fields
) -> ProviderConnection:
    connection = ProviderConnection(
        name=unique(provider_type),
        provider_type=provider_type,
        base_url=base_url,
        **fields,
    )
    set_credential(connection, credential)
    connection.save()
    return connection


def make_model(
    connection: ProviderConnection,
    upstream_model: str,
    name: str | None = None,
    **fields,
) -> Model:
    fields.setdefault("input_price", Decimal(0))
    fields.setdefault("output_price", Decimal(0))
    return Model.objects.create(
        name=name or unique("model"),
        connection=connection,
        upstream_model=upstream_model,
        **fields,
    )


@dataclass
class Tenant:
    """An org with one key; key is the plaintext the client sends."""

    org: Organization
    key: str
    key_row: object


def make_tenant(
    allowed_models=(), project: Project | None = None, org: Organization | None = None
) -> Tenant:
    org = org or make_org()
    issued = issue_key(
        organization=org,
        name=unique("key"),
        allowed_models=allowed_models,
        project=project,
    )
    return Tenant(org=org, key=issued.plaintext, key_row=issued.key)
