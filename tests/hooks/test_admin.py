"""Hooks and rule lists in the admin: validation on save and the policy test action."""

import pytest
from django.contrib.auth import get_user_model

from apps.hooks.models import Hook, RuleList
from apps.hooks.snapshot import build_hooks_config
from tests.support.factories import unique


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser(
        unique("admin"), "admin@example.test", "pw-Admin-123"
    )
    client.force_login(user)
    return client


def hook_form(**fields):
    data = {
        "name": unique("hook"),
        "kind": "pii",
        "stage": "request",
        "priority": 100,
        "enabled": "on",
        "timeout_ms": 1000,
        "options": "{}",
        "description": "",
    }
    data.update(fields)
    return data


def test_unknown_option_is_rejected_on_save(admin_client):
    response = admin_client.post(
        "/admin/hooks/hook/add/", hook_form(options='{"entites": ["email"]}')
    )

    assert response.status_code == 200
    assert (
        "Unknown option &#x27;entites&#x27; for a pii hook" in response.content.decode()
    )
    assert not Hook.objects.exists()


def test_hook_on_a_stage_it_cannot_run_is_rejected(admin_client):
    response = admin_client.post(
        "/admin/hooks/hook/add/",
        hook_form(
            kind="webhook",
            stage="response",
            options='{"url": "https://example.test/x"}',
        ),
    )

    assert "cannot run on the response stage" in response.content.decode()


def test_missing_rule_list_is_rejected(admin_client):
    response = admin_client.post(
        "/admin/hooks/hook/add/", hook_form(kind="rules", options='{"lists": ["nope"]}')
    )

    assert "Rule list &#x27;nope&#x27; does not exist" in response.content.decode()


def test_valid_hook_is_saved(admin_client):
    response = admin_client.post(
        "/admin/hooks/hook/add/", hook_form(options='{"entities": ["email"]}')
    )

    assert response.status_code == 302
    assert Hook.objects.get().options == {"entities": ["email"]}


def test_invalid_regex_in_rule_list_is_rejected(admin_client):
    response = admin_client.post(
        "/admin/hooks/rulelist/add/",
        {"name": "bad", "kind": "regex", "entries": "ok\n(unclosed", "description": ""},
    )

    assert "Line 2 is not a valid pattern" in response.content.decode()


def test_rule_lists_are_resolved_into_the_snapshot(db):
    RuleList.objects.create(
        name="codes", kind="keywords", entries="# codenames\nFalcon\n\nOsprey\n"
    )
    Hook.objects.create(name="words", kind="rules", options={"lists": ["codes"]})

    config = build_hooks_config()

    (spec,) = config.hooks
    assert spec.options["rules"] == [
        {"id": "codes:2", "keyword": "Falcon", "caseless": True},
        {"id": "codes:4", "keyword": "Osprey", "caseless": True},
    ]


def test_policy_test_action_shows_each_hooks_decision(admin_client):
    pii = Hook.objects.create(name="pii", kind="pii", priority=10)
    words = Hook.objects.create(
        name="words",
        kind="rules",
        priority=30,
        options={"rules": [{"id": "w:1", "keyword": "falcon"}]},
    )
    classify = Hook.objects.create(
        name="classify",
        kind="classification",
        priority=20,
        options={"pii_levels": {"email": "confidential"}},
    )
    selected = [str(hook.pk) for hook in (pii, words, classify)]

    response = admin_client.post(
        "/admin/hooks/hook/",
        {
            "action": "test_selected_hooks",
            "_selected_action": selected,
            "text": "mail jane@example.test about falcon",
            "stage": "request",
            "region": "",
        },
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('class="hook-record"') == 3
    assert "<td>redact</td>" in page
    assert "<td>block</td>" in page
    assert "classification:confidential" in page
    assert "mail [EMAIL] about falcon" in page
    assert "Decision: block" in page


def test_policy_test_action_renders_form_first(admin_client):
    hook = Hook.objects.create(name="pii", kind="pii")

    response = admin_client.post(
        "/admin/hooks/hook/",
        {"action": "test_selected_hooks", "_selected_action": [str(hook.pk)]},
    )

    assert response.status_code == 200
    assert "Test hooks against sample text" in response.content.decode()
    assert 'class="hook-record"' not in response.content.decode()
