"""Pagination of list endpoints: limit/offset, and cursors for the large audit tables."""

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
