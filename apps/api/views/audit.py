from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound

from apps.api.filters import AdminAuditLogFilter, AuditEventFilter
from apps.api.pagination import NewestFirstCursor
from apps.api.serializers.audit import AdminAuditLogSerializer, AuditEventSerializer
from apps.api.viewsets import ListRetrieveMixin, ScopedViewSet
from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog
from apps.iam.scoping import Lookups

# The gateway's request ids (x-request-id) start with this prefix.
REQUEST_ID_PREFIX = "req_"

EVENT_ID = OpenApiParameter(
    "id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description=(
        "The event's numeric id, or its request id (the gateway's x-request-id "
        "header, which starts with req_)."
    ),
)


@extend_schema_view(retrieve=extend_schema(parameters=[EVENT_ID]))
class AuditEventViewSet(ListRetrieveMixin, ScopedViewSet):
    """Gateway audit events, read-only, newest first.

    An event is found by its id or by its request id.
    """

    queryset = AuditEvent.objects.select_related("organization", "project")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = NewestFirstCursor
    lookups = Lookups(org="organization", project="project")
    # NOTE: lists of audit rows follow roles and request-level policy conditions only;
    # a policy naming single events or tags applies to retrieve, not to list.
    row_check = False

    def get_object(self) -> AuditEvent:
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        if value.startswith(REQUEST_ID_PREFIX):
            # A stored request id has at most 64 characters. PostgreSQL would reject
            # a value with a NUL character instead of finding nothing.
            if len(value) > 64 or "\x00" in value:
                raise NotFound(f'No audit event with request id "{value}".')
            self.lookup_url_kwarg = self.lookup_field
            self.lookup_field = "request_id"
        return super().get_object()


class AdminAuditLogViewSet(ListRetrieveMixin, ScopedViewSet):
    """Changes made through the admin and the API, read-only, newest first."""

    queryset = AdminAuditLog.objects.select_related("organization")
    serializer_class = AdminAuditLogSerializer
    filterset_class = AdminAuditLogFilter
    pagination_class = NewestFirstCursor
    lookups = Lookups(org="organization")
    row_check = False
