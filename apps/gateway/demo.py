"""Demo configuration for the quick start: an org, models on the fake provider, a key."""

import os
from dataclasses import dataclass

from django.db import transaction

from apps.keys.models import VirtualKey
from apps.keys.services import issue_key, revoke_key
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import set_credential
from apps.tenancy.models import Organization

# (environment variable, provider type, connection name, [(public model, upstream id)])
REAL_PROVIDERS = [
    ("OPENAI_API_KEY", "openai", "openai", [("gpt-4o-mini", "gpt-4o-mini")]),
    (
        "ANTHROPIC_API_KEY",
        "anthropic",
        "anthropic",
        [("claude-sonnet-4-5", "claude-sonnet-4-5")],
    ),
]


@dataclass
class Demo:
    """What the quick start prints: the key and the models it may call."""

    key: str
    models: list[str]


def _connection(
    name: str, provider_type: str, base_url: str, credential: str
) -> ProviderConnection:
    connection, _ = ProviderConnection.objects.get_or_create(
        name=name, defaults={"provider_type": provider_type, "base_url": base_url}
    )
    connection.provider_type = provider_type
    connection.base_url = base_url
    set_credential(connection, credential)
    connection.save()
    return connection


def _model(
    name: str,
    connection: ProviderConnection,
    upstream: str,
    kind: str = Model.KIND_CHAT,
) -> str:
    Model.objects.update_or_create(
        name=name,
        defaults={"connection": connection, "upstream_model": upstream, "kind": kind},
    )
    return name


@transaction.atomic
def install_demo(fake_url: str) -> Demo:
    """Create or update the demo org and models and issue a fresh demo key."""
    org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
    fake_openai = _connection("demo-fake-openai", "openai", f"{fake_url}/v1", "sk-fake")
    fake_anthropic = _connection(
        "demo-fake-anthropic", "anthropic", fake_url, "sk-ant-fake"
    )
    names = [
        _model("demo-chat", fake_openai, "gpt-4o-mini"),
        _model("demo-claude", fake_anthropic, "claude-sonnet-4-5"),
        _model(
            "demo-embed", fake_openai, "text-embedding-3-small", Model.KIND_EMBEDDINGS
        ),
    ]
    for variable, provider_type, connection_name, models in REAL_PROVIDERS:
        credential = os.environ.get(variable)
        if not credential:
            continue
        connection = _connection(connection_name, provider_type, "", credential)
        names.extend(
            _model(public, connection, upstream) for public, upstream in models
        )
    # Each start shows a new key, so the keys of earlier starts are revoked.
    for old in VirtualKey.objects.filter(
        organization=org, name="demo key", revoked_at__isnull=True
    ):
        revoke_key(old)
    issued = issue_key(organization=org, name="demo key", allowed_models=())
    return Demo(key=issued.plaintext, models=names)
