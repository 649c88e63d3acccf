"""Malformed query parameters and cursors get a 4xx error body, never a server error."""

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory
from rest_framework.request import Request

from apps.api.filters import ApiFilterBackend, UtcIsoDateTimeFilter
from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog
from tests.api.conftest import client_for
from tests.iam.factories import unique

# Python accepts UTC offsets up to 23:59, but PostgreSQL only up to 15:59.
FAR_OFFSET = "2026-01-10T12:00:00+20:38"
LIST_PATHS = ["/api/v1/audit-events/", "/api/v1/admin-audit-log/"]


@pytest.fixture
def owner(world):
    return client_for(world.members["org_owner"])


@pytest.fixture
def event(world):
    return AuditEvent.objects.create(
        request_id=unique("req"),
        created_at=datetime(2026, 1, 10, 0, 0, tzinfo=UTC),
        organization=world.org,
        ingress="openai_chat",
        status_code=200,
    )


def cursor(**tokens: str) -> str:
    """Encode a cursor the way DRF does, with any position the test names."""
    return base64.b64encode(urlencode(tokens).encode()).decode()


@pytest.mark.parametrize("path", LIST_PATHS)
def test_far_offset_filter_is_converted(owner, path):
    response = owner.get(path, {"created_after": FAR_OFFSET})

    assert response.status_code == 200


def test_date_time_filter_compares_utc(owner, event):
    # 20:38:01 at +20:38 is one second after the event at midnight UTC.
    after = owner.get(
        "/api/v1/audit-events/", {"created_before": "2026-01-10T20:38:01+20:38"}
    )
    before = owner.get(
        "/api/v1/audit-events/", {"created_before": "2026-01-10T20:37:59+20:38"}
    )

    assert [row["id"] for row in after.json()["results"]] == [event.pk]
    assert before.json()["results"] == []


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_out_of_range_filter_is_invalid(owner, value):
    response = owner.get("/api/v1/audit-events/", {"created_before": value})

    assert response.status_code == 400
    assert "created_before" in response.json()["error"]["details"]


def test_generated_filter_converts_to_utc(world):
    class View:
        filterset_fields = {"created_at": ["gte"]}

    queryset = AdminAuditLog.objects.all()
    request = Request(RequestFactory().get("/", {"created_at__gte": FAR_OFFSET}))
    filterset_class = ApiFilterBackend().get_filterset_class(View(), queryset)

    filterset = filterset_class(request.query_params, queryset=queryset)

    assert isinstance(filterset.filters["created_at__gte"], UtcIsoDateTimeFilter)
    assert filterset.is_valid()
    assert filterset.form.cleaned_data["created_at__gte"] == datetime(
        2026, 1, 9, 15, 22, tzinfo=UTC
    )
    assert list(filterset.qs) is not None


FORGED_CURSORS = [
    {"p": "abc"},
    {"o": "1", "r": "1", "p": "abc"},
    {"p": "a\x00b"},
    {"p": "2026-13-01"},
    {"p": "9999-12-31 23:59:59-05:00"},
]


@pytest.mark.parametrize(
    "tokens",
    FORGED_CURSORS,
    ids=["text", "reversed_text", "nul", "month_13", "overflow"],
)
@pytest.mark.parametrize("path", LIST_PATHS)
def test_forged_cursor_is_not_found(owner, path, tokens):
    response = owner.get(path, {"cursor": cursor(**tokens)})

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid cursor"


def test_far_offset_cursor_is_converted(owner, event):
    # The position is one second after the event at midnight UTC, so the page
    # starts with that event.
    position = "2026-01-10 20:38:01+20:38"

    response = owner.get("/api/v1/audit-events/", {"cursor": cursor(p=position)})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [event.pk]


def test_cursor_pages_follow_each_other(owner, world):
    start = datetime(2026, 1, 10, tzinfo=UTC)
    for minutes in range(3):
        AuditEvent.objects.create(
            request_id=unique("req"),
            created_at=start + timedelta(minutes=minutes),
            organization=world.org,
            ingress="openai_chat",
            status_code=200,
        )

    # The world contains one more event, created now, which comes first.
    first = owner.get("/api/v1/audit-events/", {"limit": 3}).json()
    second = owner.get(first["next"]).json()

    assert len(first["results"]) == 3
    assert len(second["results"]) == 1
    assert second["results"][0]["created_at"] == "2026-01-10T00:00:00Z"
