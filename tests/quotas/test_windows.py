"""Sliding windows count whole buckets; calendar periods start at local midnight."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nexus.engine.quotas.windows import Window, WindowError


def epoch(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_sliding_minute_uses_sixty_one_second_buckets():
    window = Window("minute")

    slot = window.slot(1_000_000.5)

    assert window.bucket_seconds == 1
    assert slot.bucket == 1_000_000
    assert slot.oldest == 1_000_000 - 59
    assert slot.suffix == "s"


@pytest.mark.parametrize(
    ("name", "size", "bucket_seconds", "buckets"),
    [
        ("minute", 2, 2, 60),
        ("hour", 1, 60, 60),
        ("day", 1, 1800, 48),
        ("day", 7, 10800, 56),
        ("day", 30, 43200, 60),
    ],
)
def test_sliding_window_stays_within_sixty_buckets(name, size, bucket_seconds, buckets):
    window = Window(name, size)

    assert window.bucket_seconds == bucket_seconds
    assert window.buckets == buckets


def test_sliding_bucket_leaves_after_one_window():
    window = Window("hour")
    slot = window.slot(7200.0)

    assert window.bucket_leaves_at(slot.bucket) == 7200.0 + 3600


def test_calendar_month_starts_at_local_midnight():
    window = Window("calendar_month", timezone="Europe/Paris")

    slot = window.slot(epoch("2025-03-15T12:00:00", "Europe/Paris"))

    assert slot.bucket == int(epoch("2025-03-01T00:00:00", "Europe/Paris"))
    assert slot.ends_at == epoch("2025-04-01T00:00:00", "Europe/Paris")
    assert slot.suffix == str(slot.bucket)


def test_calendar_day_spans_daylight_saving_change():
    window = Window("calendar_day", timezone="Europe/Paris")

    slot = window.slot(epoch("2025-03-30T12:00:00", "Europe/Paris"))

    assert slot.ends_at - slot.bucket == 23 * 3600


def test_calendar_week_starts_on_monday():
    window = Window("calendar_week", timezone="America/New_York")

    slot = window.slot(epoch("2025-06-05T23:30:00", "America/New_York"))

    assert slot.bucket == int(epoch("2025-06-02T00:00:00", "America/New_York"))
    assert slot.ends_at == epoch("2025-06-09T00:00:00", "America/New_York")


def test_calendar_period_follows_time_zone_not_utc():
    utc_day = Window("calendar_day")
    tokyo_day = Window("calendar_day", timezone="Asia/Tokyo")
    moment = epoch("2025-06-05T20:00:00")

    assert utc_day.slot(moment).bucket != tokyo_day.slot(moment).bucket
    assert tokyo_day.slot(moment).bucket == int(
        epoch("2025-06-06T00:00:00", "Asia/Tokyo")
    )


@pytest.mark.parametrize(
    ("name", "size", "timezone"),
    [
        ("fortnight", 1, "UTC"),
        ("day", 0, "UTC"),
        ("day", 61, "UTC"),
        ("calendar_month", 2, "UTC"),
        ("calendar_day", 1, "Mars/Olympus"),
    ],
)
def test_invalid_window_is_rejected(name, size, timezone):
    with pytest.raises(WindowError):
        Window(name, size, timezone)
