"""Cache admin actions, the snapshot builder and policy precedence."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from apps.cache.models import CachePolicy, CachePurge, QuarantinedEntry, SemanticIndex
from apps.cache.snapshot import build_cache_config
from nexus.engine.cache.config import (
    CacheConfig,
    tenant_scope,
)
from nexus.engine.cache.config import CachePolicy as PolicyEntry
from nexus.engine.snapshot import KeyEntry
from tests.support.factories import (
    make_connection,
    make_model,
    make_project,
    make_tenant,
    unique,
)

ENTRY = "ab" * 32


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser(
        unique("admin"), "admin@example.test", "pw-Admin-123"
    )
    client.force_login(user)
    client.user = user
    return client


def run_action(client, model: str, action: str, ids) -> None:
    response = client.post(
        f"/admin/cache/{model}/",
        {"action": action, "_selected_action": [str(pk) for pk in ids]},
    )
    assert response.status_code == 302, response.content[:500]


def test_drop_action_bumps_the_index_generation(admin_client):
    index = SemanticIndex.objects.create(name=unique("i").replace("-", "_"))

    run_action(admin_client, "semanticindex", "drop_indexes", [index.pk])

    index.refresh_from_db()
    assert index.generation == 1
    assert build_cache_config() is not None


def test_purge_action_records_one_purge_per_org(admin_client):
    tenant = make_tenant()
    policies = [
        CachePolicy.objects.create(organization=tenant.org),
        CachePolicy.objects.create(organization=tenant.org, model="m"),
    ]

    run_action(
        admin_client, "cachepolicy", "purge_organizations", [p.pk for p in policies]
    )

    purges = CachePurge.objects.filter(organization=tenant.org)
    assert purges.count() == 1
    assert purges.get().requested_by == admin_client.user
    assert build_cache_config().generation(tenant.org.pk) == purges.get().pk


def test_reporting_an_entry_quarantines_it(admin_client):
    response = admin_client.post(
        "/admin/cache/quarantinedentry/add/", {"entry_id": ENTRY, "reason": "wrong"}
    )

    assert response.status_code == 302
    entry = QuarantinedEntry.objects.get(entry_id=ENTRY)
    assert entry.reported_by == admin_client.user
    assert ENTRY in build_cache_config().quarantined


def test_released_entry_is_served_again(admin_client):
    entry = QuarantinedEntry.objects.create(entry_id=ENTRY)

    run_action(admin_client, "quarantinedentry", "release", [entry.pk])

    entry.refresh_from_db()
    assert entry.released_at is not None
    assert ENTRY not in build_cache_config().quarantined


def test_malformed_entry_id_is_rejected(admin_client):
    response = admin_client.post(
        "/admin/cache/quarantinedentry/add/", {"entry_id": "not-hex", "reason": ""}
    )

    assert response.status_code == 200
    assert not QuarantinedEntry.objects.exists()


def test_global_purge_moves_every_org_generation(db):
    first, second = make_tenant(), make_tenant()
    before = build_cache_config()

    CachePurge.objects.create(organization=None)
    after = build_cache_config()

    assert after.generation(first.org.pk) > before.generation(first.org.pk)
    assert after.generation(second.org.pk) > before.generation(second.org.pk)


def test_snapshot_places_policies_by_level(db):
    tenant = make_tenant()
    project = make_project(tenant.org)
    index = SemanticIndex.objects.create(
        name=unique("i").replace("-", "_"), threshold=0.8
    )
    org_row = CachePolicy.objects.create(organization=tenant.org, ttl_seconds=10)
    project_row = CachePolicy.objects.create(project=project, model="m1")
    key_row = CachePolicy.objects.create(
        key=tenant.key_row, semantic_index=index, semantic_threshold=0.97
    )

    config = build_cache_config()

    assert config.by_org[tenant.org.pk][""].id == org_row.pk
    assert config.by_project[project.pk]["m1"].id == project_row.pk
    key_policy = config.by_key[tenant.key_row.pk][""]
    assert key_policy.id == key_row.pk
    assert key_policy.semantic.threshold == 0.97
    assert key_policy.semantic.index == index.name
    project_row.refresh_from_db()
    assert project_row.organization_id == tenant.org.pk


def key(id=1, org=1, project=None) -> KeyEntry:
    return KeyEntry(
        id=id, org_id=org, project_id=project, prefix="nx", allowed_models=frozenset()
    )


def test_most_specific_policy_wins():
    config = CacheConfig(
        by_key={1: {"": PolicyEntry(id=1)}},
        by_project={5: {"m": PolicyEntry(id=2), "": PolicyEntry(id=3)}},
        by_org={1: {"": PolicyEntry(id=4)}},
        everywhere={"": PolicyEntry(id=5)},
    )

    assert config.policy_for(key(id=1, project=5), "m").id == 1
    assert config.policy_for(key(id=2, project=5), "m").id == 2
    assert config.policy_for(key(id=2, project=5), "other").id == 3
    assert config.policy_for(key(id=2, project=6), "m").id == 4
    assert config.policy_for(key(id=2, org=9), "m").id == 5
    assert CacheConfig().policy_for(key(), "m") is None


@pytest.mark.parametrize(
    ("share", "scope"),
    [
        ("org", "org:1"),
        ("project", "org:1/project:5"),
        ("key", "org:1/project:5/key:3"),
    ],
)
def test_tenant_scope_by_share(share, scope):
    assert tenant_scope(key(id=3, project=5), share) == scope


def test_project_scope_without_project_is_the_org_without_project():
    assert tenant_scope(key(id=3), "project") == "org:1/project:-"


@pytest.mark.parametrize("named_by", ["name", "alias"])
def test_index_refuses_an_organizations_own_embedding_model(db, named_by):
    org = make_tenant().org
    owned = make_connection("openai", "http://127.0.0.1:9/v1", organization=org)
    model = make_model(owned, unique("embed"), kind="embeddings")
    model.aliases = [unique("embed-alias")]
    model.save()
    shared = make_model(
        make_connection("openai", "http://127.0.0.1:9/v1"),
        unique("embed"),
        kind="embeddings",
    )
    name = model.name if named_by == "name" else model.aliases[0]

    with pytest.raises(ValidationError) as raised:
        SemanticIndex(name="owned_model_index", embedding_model=name).full_clean()
    SemanticIndex(name="shared_model_index", embedding_model=shared.name).full_clean()

    assert "embedding_model" in raised.value.message_dict
