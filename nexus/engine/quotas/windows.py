"""Quota windows: sliding windows kept in buckets, and calendar periods in a time zone.

A sliding window of W seconds is stored as n buckets of b seconds each (bucket id =
floor(epoch / b)); the window's usage is the sum of the newest n buckets, so usage
leaves the window up to one bucket (W / n) earlier than an exact log would show. A
calendar window (day, ISO week starting Monday, month) is one bucket per period, and
each period starts at local midnight in the window's time zone.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

SLIDING_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
CALENDAR = ("calendar_day", "calendar_week", "calendar_month")
WINDOW_NAMES = tuple(SLIDING_SECONDS) + CALENDAR

# Bucket sizes a sliding window may use; each divides a day, so buckets of the same
# size line up with UTC minutes, hours and days.
BUCKET_SECONDS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
    43200, 86400,
)  # fmt: skip
MAX_BUCKETS = 60
# Largest sliding window: 60 buckets of a day.
MAX_SLIDING_SECONDS = MAX_BUCKETS * 86400
# How long a counter outlives its last write beyond the window, so a late settlement
# still finds the bucket it reserved in.
GRACE_SECONDS = 3600


class WindowError(ValueError):
    """A window name, size or time zone is invalid."""


@dataclass(frozen=True)
class Slot:
    """The bucket one request is counted in at one moment, and the window around it.

    `bucket` is the bucket the request is charged to, and buckets older than `oldest`
    no longer count. `instance` numbers the window instance, which makes soft-limit
    alerts fire once per window.
    """

    suffix: str
    bucket: int
    oldest: int
    ttl: int
    instance: int
    # Calendar: end of the period. Sliding: end of the current window instance.
    ends_at: float


@dataclass(frozen=True)
class Window:
    """A sliding window of `size` minutes, hours or days, or a calendar period."""

    name: str
    size: int = 1
    timezone: str = "UTC"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name not in WINDOW_NAMES:
            raise WindowError(
                f'Unknown window "{self.name}"; use one of {", ".join(WINDOW_NAMES)}.'
            )
        if self.sliding:
            if self.size < 1 or self.seconds > MAX_SLIDING_SECONDS:
                raise WindowError(
                    "A sliding window must be 1 minute to "
                    f"{MAX_SLIDING_SECONDS // 86400} days long, got {self.size} x {self.name}."
                )
        elif self.size != 1:
            raise WindowError(f"A calendar window has size 1, got {self.size}.")
        try:
            # Loaded here (snapshot build, off the request path): reading the tz file
            # is blocking I/O.
            zone = ZoneInfo(self.timezone)
        except (ValueError, OSError, KeyError):
            raise WindowError(f'Unknown time zone "{self.timezone}".') from None
        object.__setattr__(self, "zone", zone)

    @property
    def sliding(self) -> bool:
        return self.name in SLIDING_SECONDS

    @cached_property
    def seconds(self) -> int:
        """Return the length of a sliding window in seconds."""
        return SLIDING_SECONDS.get(self.name, 0) * self.size

    @cached_property
    def bucket_seconds(self) -> int:
        """Return the smallest bucket size that keeps the window within MAX_BUCKETS."""
        for size in BUCKET_SECONDS:
            if math.ceil(self.seconds / size) <= MAX_BUCKETS:
                return size
        return BUCKET_SECONDS[-1]

    @cached_property
    def buckets(self) -> int:
        return math.ceil(self.seconds / self.bucket_seconds)

    @cached_property
    def code(self) -> str:
        """Return a short stable id of the window's shape, used in counter keys."""
        if self.sliding:
            return f"{self.name[0]}{self.size}"
        return {"calendar_day": "cd", "calendar_week": "cw", "calendar_month": "cm"}[
            self.name
        ]

    def label(self) -> str:
        """Return the window in words, for messages: "sliding 1 hour", "calendar month"."""
        if self.sliding:
            unit = self.name if self.size == 1 else f"{self.name}s"
            return f"sliding {self.size} {unit}"
        period = self.name.removeprefix("calendar_")
        if self.timezone == "UTC":
            return f"calendar {period}"
        return f"calendar {period} ({self.timezone})"

    def slot(self, now: float) -> Slot:
        """Return the slot a request at `now` (epoch seconds) is counted in."""
        if self.sliding:
            size = self.bucket_seconds
            bucket = int(now // size)
            instance = int(now // self.seconds)
            return Slot(
                suffix="s",
                bucket=bucket,
                oldest=bucket - self.buckets + 1,
                ttl=self.buckets * size + GRACE_SECONDS,
                instance=instance,
                ends_at=float((instance + 1) * self.seconds),
            )
        start, end = calendar_period(self, now)
        return Slot(
            suffix=str(start),
            bucket=start,
            oldest=start,
            ttl=max(1, math.ceil(end - now)) + GRACE_SECONDS,
            instance=start,
            ends_at=float(end),
        )

    def bucket_leaves_at(self, bucket: int) -> float:
        """Return when a sliding bucket stops counting, in epoch seconds."""
        return float((bucket + self.buckets) * self.bucket_seconds)


_periods: dict[tuple[str, str], tuple[int, int]] = {}


def calendar_period(window: Window, now: float) -> tuple[int, int]:
    """Return the [start, end) epoch seconds of the calendar period holding `now`."""
    cache_key = (window.name, window.timezone)
    cached = _periods.get(cache_key)
    if cached is not None and cached[0] <= now < cached[1]:
        return cached
    local = datetime.fromtimestamp(now, window.zone).date()
    if window.name == "calendar_day":
        first, following = local, local + timedelta(days=1)
    elif window.name == "calendar_week":
        first = local - timedelta(days=local.weekday())
        following = first + timedelta(days=7)
    else:
        first = local.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    period = (_midnight(first, window.zone), _midnight(following, window.zone))
    _periods[cache_key] = period
    return period


def _midnight(day, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
