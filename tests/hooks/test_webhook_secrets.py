"""Webhook header values are sealed at rest, write-only in the API and still sent."""

import base64
import importlib

import openai
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client, override_settings
from rest_framework.test import APIClient

from apps.hooks.models import MASKED_HEADER, AllowedWebhookHost, Hook
from apps.hooks.services import run_policy_test
from apps.hooks.snapshot import build_hooks_config
from apps.iam.models import AdminAuditLog
from apps.providers import vault
from apps.providers.services import rekey_credentials
from nexus.engine.vault import VaultError
from tests.hooks.servers import HttpPeer
from tests.iam.factories import make_member, make_org
from tests.support.factories import unique

SECRET = "Bearer sk-decision-service-7f3a9c"
URL = "/api/v1/hooks/"
NEW_KEY = base64.b64encode(b"n" * 32).decode()


@pytest.fixture
def receiver():
    peer = HttpPeer().start()
    yield peer
    peer.close()


@pytest.fixture
def org(db):
    return make_org()


@pytest.fixture
def loopback_allowed(db):
    AllowedWebhookHost.objects.create(host="127.0.0.1", reason="test receiver")


@pytest.fixture
def owner(org) -> APIClient:
    client = APIClient()
    client.force_login(make_member(org, "org_owner"))
    return client


def webhook_options(url: str, **headers) -> dict:
    return {
        "url": url,
        "payload": "metadata",
        "headers": headers or {"Authorization": SECRET},
    }


def make_webhook(org, url: str, **headers) -> Hook:
    hook = Hook(
        name=unique("webhook"),
        kind="webhook",
        organization=org,
        options=webhook_options(url, **headers),
    )
    hook.full_clean()
    hook.save()
    return hook


def raw_row(hook: Hook) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM hooks_hook WHERE id = %s", [hook.pk])
        return str(cursor.fetchone())


def create_by_api(owner, org, receiver) -> dict:
    body = {
        "organization": org.slug,
        "name": unique("webhook"),
        "kind": "webhook",
        "options": webhook_options(receiver.url + "/decide"),
    }
    response = owner.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_raw_row_holds_no_header_value(org):
    hook = make_webhook(org, "http://127.0.0.1:9/decide")

    stored = raw_row(hook)

    assert SECRET not in stored
    assert "sk-decision-service" not in stored
    assert MASKED_HEADER in stored
    assert Hook.objects.get(pk=hook.pk).options["headers"] == {
        "Authorization": MASKED_HEADER
    }


def test_snapshot_spec_carries_plaintext(org):
    hook = make_webhook(org, "http://127.0.0.1:9/decide")

    specs = [spec for spec in build_hooks_config().hooks if spec.id == hook.pk]

    assert specs[0].options["headers"] == {"Authorization": SECRET}


def test_ciphertext_copied_to_other_row_fails(org):
    first = make_webhook(org, "http://127.0.0.1:9/decide")
    second = make_webhook(org, "http://127.0.0.1:9/decide", Authorization="other")
    Hook.objects.filter(pk=second.pk).update(
        headers_ciphertext=first.headers_ciphertext,
        headers_key_id=first.headers_key_id,
    )

    copied = Hook.objects.get(pk=second.pk)

    with pytest.raises(VaultError, match="failed authentication"):
        copied.webhook_headers()


def test_data_migration_seals_existing_row(org):
    migration = importlib.import_module(
        "apps.hooks.migrations.0003_seal_webhook_headers"
    )
    state = MigrationLoader(connection).project_state(
        ("hooks", "0002_hook_sealed_headers")
    )
    hook = make_webhook(org, "http://127.0.0.1:9/decide")
    # The row as it was stored before header values were sealed.
    Hook.objects.filter(pk=hook.pk).update(
        options=webhook_options("http://127.0.0.1:9/decide"),
        headers_ciphertext="",
        headers_key_id="",
    )

    migration.seal_headers(state.apps, None)
    sealed = Hook.objects.get(pk=hook.pk)
    sealed_row = raw_row(hook)
    migration.unseal_headers(state.apps, None)
    unsealed = Hook.objects.get(pk=hook.pk)

    assert SECRET not in sealed_row
    assert sealed.uid != hook.uid
    assert sealed.options["headers"] == {"Authorization": MASKED_HEADER}
    assert sealed.webhook_headers() == {"Authorization": SECRET}
    assert unsealed.options["headers"] == {"Authorization": SECRET}
    assert unsealed.headers_ciphertext == ""


def test_api_never_returns_header_value(owner, org, receiver):
    created = create_by_api(owner, org, receiver)

    fetched = owner.get(f"{URL}{created['id']}/")
    listed = owner.get(f"{URL}?organization={org.slug}")

    masked = {"Authorization": MASKED_HEADER}
    assert created["options"]["headers"] == masked
    assert fetched.json()["options"]["headers"] == masked
    for response in (fetched, listed):
        assert SECRET not in response.content.decode()
    assert "sk-decision-service" not in str(created)


def test_api_audit_log_masks_header(owner, org, receiver):
    created = create_by_api(owner, org, receiver)
    owner.patch(
        f"{URL}{created['id']}/",
        {"options": webhook_options(receiver.url + "/decide", **{"X-Key": "k-2"})},
        format="json",
    )

    entries = AdminAuditLog.objects.filter(action__startswith="hooks:hook.")

    assert entries.count() == 2
    logged = str(list(entries.values_list("before", "after")))
    assert SECRET not in logged
    assert "k-2" not in logged


def test_api_masked_value_keeps_header(owner, org, receiver):
    created = create_by_api(owner, org, receiver)
    options = {**created["options"], "payload": "redacted"}

    response = owner.patch(
        f"{URL}{created['id']}/", {"options": options}, format="json"
    )

    assert response.status_code == 200, response.content
    hook = Hook.objects.get(pk=created["id"])
    assert hook.options["payload"] == "redacted"
    assert hook.webhook_headers() == {"Authorization": SECRET}


def test_api_new_value_replaces_header(owner, org, receiver):
    created = create_by_api(owner, org, receiver)
    options = webhook_options(receiver.url + "/decide", Authorization="Bearer new")

    response = owner.patch(
        f"{URL}{created['id']}/", {"options": options}, format="json"
    )

    assert response.status_code == 200, response.content
    hook = Hook.objects.get(pk=created["id"])
    assert hook.webhook_headers() == {"Authorization": "Bearer new"}
    assert "Bearer new" not in raw_row(hook)


def test_api_unknown_masked_header_is_invalid(owner, org, receiver):
    created = create_by_api(owner, org, receiver)
    options = webhook_options(receiver.url + "/decide", **{"X-Other": MASKED_HEADER})

    response = owner.patch(
        f"{URL}{created['id']}/", {"options": options}, format="json"
    )

    assert response.status_code == 400
    assert "X-Other" in str(response.json()["error"]["details"]["options"])


def test_policy_test_sends_header(org, receiver, loopback_allowed):
    make_webhook(org, receiver.url + "/decide")

    result = run_policy_test(list(Hook.objects.filter(organization=org)), "hello")

    assert result.error == ""
    assert receiver.requests[0]["headers"]["authorization"] == SECRET


def test_rekey_keeps_header_working(org, receiver, loopback_allowed):
    hook = make_webhook(org, receiver.url + "/decide")
    # The ring keeps the current key, so rows of other tests still open afterwards.
    keys = f"{settings.NEXUS_VAULT_KEYS},rekeyed:{NEW_KEY}"

    with override_settings(NEXUS_VAULT_KEYS=keys, NEXUS_VAULT_ACTIVE_KEY="rekeyed"):
        vault.key_ring.cache_clear()
        try:
            changed = rekey_credentials()
            stored = Hook.objects.get(pk=hook.pk)
            headers = stored.webhook_headers()
            result = run_policy_test([stored], "hello")
        finally:
            vault.key_ring.cache_clear()

    assert changed >= 1
    assert hook.headers_key_id != "rekeyed"
    assert stored.headers_key_id == "rekeyed"
    assert stored.headers_ciphertext != hook.headers_ciphertext
    assert SECRET not in raw_row(stored)
    assert headers == {"Authorization": SECRET}
    assert result.error == ""
    assert receiver.requests[0]["headers"]["authorization"] == SECRET


def test_admin_hides_header_value(db):
    user = get_user_model().objects.create_superuser(
        unique("admin"), "admin@example.test", "pw-Admin-123"
    )
    client = Client()
    client.force_login(user)
    form = {
        "name": unique("webhook"),
        "kind": "webhook",
        "stage": "request",
        "priority": 100,
        "enabled": "on",
        "timeout_ms": 1000,
        "description": "",
        "options": '{"url": "https://example.test/decide", '
        f'"headers": {{"Authorization": "{SECRET}"}}}}',
    }

    response = client.post("/admin/hooks/hook/add/", form)

    assert response.status_code == 302, response.content
    hook = Hook.objects.get(name=form["name"])
    assert SECRET not in raw_row(hook)
    assert hook.webhook_headers() == {"Authorization": SECRET}
    page = client.get(f"/admin/hooks/hook/{hook.pk}/change/").content.decode()
    assert SECRET not in page
    logged = str(list(AdminAuditLog.objects.values_list("before", "after")))
    assert SECRET not in logged


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


def test_gateway_sends_header_to_webhook(oai, setup, policy, receiver):
    policy.allow_host("127.0.0.1")
    policy.add("webhook", "request", options=webhook_options(receiver.url + "/decide"))

    reply = oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    assert reply.choices[0].message.content == "Echo: hi"
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["headers"]["authorization"] == SECRET
