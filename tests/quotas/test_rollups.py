"""Hourly roll-ups sum audit events per organization, project, key, provider and model."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.quotas.models import UsageRollup
from apps.quotas.services import rollup_recent_usage, rollup_usage
from apps.quotas.tasks import rollup_usage_task
from tests.support.factories import make_org, make_project

pytestmark = pytest.mark.django_db

HOUR = datetime(2025, 6, 5, 10, tzinfo=UTC)


def event(org, at, **fields) -> AuditEvent:
    defaults = {
        "request_id": "req_" + uuid.uuid4().hex,
        "organization": org,
        "created_at": at,
        "ingress": "chat",
        "status_code": 200,
        "provider": "openai-main",
        "model": "gpt-small",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_nano_usd": 1000,
    }
    defaults.update(fields)
    return AuditEvent.objects.create(**defaults)


def test_rollup_groups_by_hour_and_dimensions():
    org = make_org()
    project = make_project(org)
    event(org, HOUR + timedelta(minutes=1))
    event(
        org,
        HOUR + timedelta(minutes=59),
        status_code=429,
        input_tokens=0,
        output_tokens=0,
        cost_nano_usd=0,
    )
    event(org, HOUR + timedelta(minutes=30), project=project, model="gpt-large")
    event(org, HOUR + timedelta(hours=1, minutes=5))

    written = rollup_usage(HOUR, HOUR + timedelta(hours=2))

    rows = {
        (row.hour, row.project_id, row.model): row
        for row in UsageRollup.objects.filter(organization=org)
    }
    first = rows[(HOUR, 0, "gpt-small")]
    assert written == 3
    assert len(rows) == 3
    assert first.requests == 2
    assert first.errors == 1
    assert first.input_tokens == 10
    assert first.output_tokens == 5
    assert first.cost_nano_usd == 1000
    assert rows[(HOUR, project.pk, "gpt-large")].requests == 1
    assert rows[(HOUR + timedelta(hours=1), 0, "gpt-small")].requests == 1


def test_rollup_twice_gives_same_rows():
    org = make_org()
    event(org, HOUR + timedelta(minutes=1))
    rollup_usage(HOUR, HOUR + timedelta(hours=1))
    event(org, HOUR + timedelta(minutes=2))

    rollup_usage(HOUR, HOUR + timedelta(hours=1))
    rollup_usage(HOUR, HOUR + timedelta(hours=1))

    [row] = UsageRollup.objects.filter(organization=org)
    assert row.requests == 2
    assert row.cost_nano_usd == 2000


def test_recent_rollup_covers_current_and_previous_hours():
    org = make_org()
    now = datetime.now(UTC)
    event(org, now - timedelta(minutes=1))
    event(org, now - timedelta(hours=1, minutes=1))
    event(org, now - timedelta(hours=5))

    rollup_recent_usage(2, now)

    assert UsageRollup.objects.filter(organization=org).count() == 2


def test_rollup_task_runs_on_beat_schedule():
    org = make_org()
    event(org, datetime.now(UTC))

    rollup_usage_task.delay()

    schedule = settings.CELERY_BEAT_SCHEDULE["quotas-usage-rollup"]
    assert schedule["task"] == rollup_usage_task.name
    assert UsageRollup.objects.filter(organization=org).count() == 1
