from apps.api.filters import AdminAuditLogFilter, AuditEventFilter
from apps.api.pagination import NewestFirstCursor
from apps.api.serializers.audit import AdminAuditLogSerializer, AuditEventSerializer
from apps.api.viewsets import ListRetrieveMixin, ScopedViewSet
from apps.audit.models import AuditEvent
from apps.iam.models import AdminAuditLog
from apps.iam.scoping import Lookups


class AuditEventViewSet(ListRetrieveMixin, ScopedViewSet):
    """Gateway audit events, read-only, newest first."""

    queryset = AuditEvent.objects.select_related("organization", "project")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = NewestFirstCursor
    lookups = Lookups(org="organization", project="project")
    # NOTE: lists of audit rows follow roles and request-level policy conditions only;
    # a policy naming single events or tags applies to retrieve, not to list.
    row_check = False


class AdminAuditLogViewSet(ListRetrieveMixin, ScopedViewSet):
    """Changes made through the admin and the API, read-only, newest first."""

    queryset = AdminAuditLog.objects.select_related("organization")
    serializer_class = AdminAuditLogSerializer
    filterset_class = AdminAuditLogFilter
    pagination_class = NewestFirstCursor
    lookups = Lookups(org="organization")
    row_check = False
