"""Pagination of list endpoints: limit/offset, and cursors for the large audit tables."""

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class LimitOffset(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class NewestFirstCursor(CursorPagination):
    """Cursor pages over a table ordered by creation time, newest first."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        # A client can send any position, and one that is no date-time would fail
        # in the query. It is an invalid cursor (404) like any other forged one.
        try:
            position = parse_datetime(cursor.position)
        except ValueError:
            position = None
        if position is None:
            raise NotFound(self.invalid_cursor_message)
        if timezone.is_naive(position):
            position = position.replace(tzinfo=UTC)
        try:
            # PostgreSQL rejects UTC offsets beyond 15:59 that Python accepts.
            position = position.astimezone(UTC)
        except OverflowError:
            raise NotFound(self.invalid_cursor_message) from None
        # str() is the form DRF encodes positions in and compares them with.
        return cursor._replace(position=str(position))
