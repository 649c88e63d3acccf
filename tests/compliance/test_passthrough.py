"""Emergency passthrough flags: scoped bypasses, limited to 8 hours, audited on and off."""

import time
from datetime import timedelta

import anthropic
import openai
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance.models import ControlEvent, PassthroughFlag
from apps.compliance.services import end_passthrough, expire_passthroughs, save_control
from apps.compliance.tasks import expire_passthrough_task

PII = "mail jane.placeholder@example.test"


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


@pytest.fixture
def redacting(policy):
    policy.add("pii", "request")
    policy.add("pii", "response")
    return policy


def flag(setup, cleanup, *, hours=1.0, starts_at=None, **fields) -> PassthroughFlag:
    starts_at = starts_at or timezone.now()
    row = PassthroughFlag(
        reason="hook vendor outage, ticket 42",
        starts_at=starts_at,
        expires_at=starts_at + timedelta(hours=hours),
        **fields,
    )
    save_control(row, actor="ops")
    cleanup.append(row)
    setup.gateway.refresh()
    return row


def test_bypass_hooks_for_an_org_skips_redaction_and_is_audited(
    oai, setup, cleanup, redacting, fake_provider
):
    row = flag(setup, cleanup, scope="org", organization=setup.org, bypass_hooks=True)

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": PII}]
    )

    assert b"jane.placeholder@example.test" in fake_provider.requests[-1].body
    setup.gateway.flush_audit()
    details = AuditEvent.objects.get(
        request_id=response.headers["x-request-id"]
    ).details
    assert details["controls"] == {"bypass": ["hooks"], "flags": [row.pk]}
    assert details["hooks"] == {"bypassed": True}


def test_bypass_for_another_provider_does_not_apply(
    oai, setup, cleanup, redacting, fake_provider
):
    flag(
        setup,
        cleanup,
        scope="provider",
        connection=setup.anthropic_connection,
        bypass_hooks=True,
    )

    oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": PII}]
    )
    to_openai = fake_provider.requests[-1].body
    oai.chat.completions.create(
        model=setup.claude, messages=[{"role": "user", "content": PII}]
    )
    to_anthropic = fake_provider.requests[-1].body

    assert b"jane.placeholder" not in to_openai
    assert b"jane.placeholder" in to_anthropic


def test_bypass_cache_reaches_call_state(oai, setup, cleanup):
    flag(setup, cleanup, scope="global", bypass_cache=True)

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    setup.gateway.flush_audit()
    details = AuditEvent.objects.get(
        request_id=response.headers["x-request-id"]
    ).details
    assert details["controls"]["bypass"] == ["cache"]


def test_bypass_normalize_forwards_same_format_bodies_as_sent(
    setup, cleanup, redacting, fake_provider
):
    flag(setup, cleanup, scope="org", organization=setup.org, bypass_normalize=True)
    claude = anthropic.Anthropic(
        base_url=setup.gateway.url, api_key=setup.key, max_retries=0
    )

    claude.messages.create(
        model=setup.claude,
        max_tokens=50,
        system=[
            {"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}
        ],
        messages=[{"role": "user", "content": "hello"}],
    )

    assert fake_provider.requests[-1].json["system"][0]["cache_control"] == {
        "type": "ephemeral"
    }


def test_flag_expires_on_time(oai, setup, cleanup, redacting, fake_provider):
    starts = timezone.now() - timedelta(hours=8) + timedelta(seconds=2)
    row = flag(
        setup,
        cleanup,
        scope="org",
        organization=setup.org,
        bypass_hooks=True,
        hours=8,
        starts_at=starts,
    )
    oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": PII}]
    )
    assert b"jane.placeholder" in fake_provider.requests[-1].body

    time.sleep(max(0.0, (row.expires_at - timezone.now()).total_seconds()) + 0.2)
    oai.chat.completions.create(
        model=setup.chat, messages=[{"role": "user", "content": PII}]
    )

    assert b"jane.placeholder" not in fake_provider.requests[-1].body
    assert expire_passthrough_task() == 1
    assert expire_passthroughs() == 0
    actions = list(
        ControlEvent.objects.filter(control_type="passthrough", control_id=row.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["on", "expired"]


def test_switch_off_is_audited(setup, cleanup):
    row = flag(setup, cleanup, scope="global", bypass_cache=True)

    end_passthrough(row, actor="ops", reason="vendor recovered")
    end_passthrough(row, actor="ops")

    events = list(
        ControlEvent.objects.filter(
            control_type="passthrough", control_id=row.pk
        ).order_by("id")
    )
    assert [(event.action, event.actor) for event in events] == [
        ("on", "ops"),
        ("off", "ops"),
    ]
    assert events[1].reason == "vendor recovered"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hours": 8.01, "bypass_cache": True}, "at most 8 hours"),
        ({"hours": 1, "bypass_cache": True, "reason": ""}, "written reason"),
        ({"hours": 1}, "at least one of"),
        ({"hours": -1, "bypass_cache": True}, "after the start"),
    ],
)
def test_invalid_flags_are_rejected(db, fields, message):
    hours = fields.pop("hours")
    now = timezone.now()
    row = PassthroughFlag(
        scope="global",
        reason=fields.pop("reason", "outage"),
        starts_at=now,
        expires_at=now + timedelta(hours=hours),
        **fields,
    )

    with pytest.raises(ValidationError, match=message):
        save_control(row, actor="ops")
