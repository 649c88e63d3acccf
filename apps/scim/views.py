"""The SCIM 2.0 endpoint: django-scim2's views with Nexus scoping and paging.

django-scim2 handles dispatch, bearer authentication (through the configured
middleware), the request methods and error rendering. These subclasses add what
RFC 7644 requires and the library leaves out: 404 error bodies, paging limits,
the attributes and excludedAttributes parameters, search requests in the body,
and filters compiled to database queries.
"""

import json
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django_scim import exceptions, views
from django_scim.constants import SCIM_CONTENT_TYPE, SchemaURI
from scim2_filter_parser.parser import SCIMParserError

from apps.scim.adapters import PROJECTION_ATTRIBUTE
from apps.scim.schemas import all_resource_types, all_schemas

DEFAULT_COUNT = 100


def _split(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    if isinstance(value, str) and value:
        return tuple(part for part in value.split(",") if part.strip())
    return ()


def _json_response(document: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(document), content_type=SCIM_CONTENT_TYPE, status=status
    )


def _list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict:
    return {
        "schemas": [SchemaURI.LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start,
        "Resources": resources,
    }


class ScimViewMixin:
    """Behaviour every Nexus SCIM view adds to django-scim2's."""

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        setattr(
            request,
            PROJECTION_ATTRIBUTE,
            (
                _split(request.GET.get("attributes")),
                _split(request.GET.get("excludedAttributes")),
            ),
        )

    def status_501(self, request: HttpRequest, *args: Any, **kwargs: Any):
        return _json_response(
            exceptions.SCIMException(
                f"{request.path} is not implemented.", status=501
            ).to_dict(),
            status=501,
        )


class ScimResourceViewMixin(ScimViewMixin):
    """Paging, search and lookups by SCIM id for /Users and /Groups."""

    def get_object(self):
        try:
            UUID(str(self.kwargs.get(self.lookup_url_kwarg)))
        except ValueError:
            raise exceptions.NotFoundError(
                self.kwargs.get(self.lookup_url_kwarg)
            ) from None
        return super().get_object()

    def _page(self, request: HttpRequest, source: Any = None) -> tuple[int, int]:
        params = request.GET if source is None else source
        try:
            start = int(params.get("startIndex", 1))
            count = int(params.get("count", DEFAULT_COUNT))
        except (TypeError, ValueError):
            raise exceptions.BadRequestError(
                "startIndex and count must be integers.", scim_type="invalidValue"
            ) from None
        # RFC 7644, section 3.4.2.4: a start below 1 is 1 and a negative count is 0.
        return max(start, 1), min(max(count, 0), settings.NEXUS_SCIM_MAX_RESULTS)

    def get_many(self, request: HttpRequest) -> HttpResponse:
        query = request.GET.get("filter")
        if query:
            return self._search(request, query, *self._page(request))
        rows = self.model_cls.objects.filter(**self.get_extra_filter_kwargs(request))
        rows = rows.order_by("created_at", "pk")
        return self._build_response(request, rows, *self._page(request))

    def _search(
        self, request: HttpRequest, query: str, start: int, count: int
    ) -> HttpResponse:
        if "\x00" in query:
            raise exceptions.BadRequestError(
                "Invalid filter: it contains a NUL character.",
                scim_type="invalidFilter",
            )
        try:
            rows = self.__class__.parser_getter().search(query, request)
        except (ValueError, SCIMParserError) as exc:
            raise exceptions.BadRequestError(
                f"Invalid filter: {exc}", scim_type="invalidFilter"
            ) from None
        return self._build_response(request, rows, start, count)

    def _build_response(
        self, request: HttpRequest, rows: QuerySet, start: int, count: int
    ) -> HttpResponse:
        total = rows.count()
        page = list(rows[start - 1 : start - 1 + count]) if count else []
        resources = [self.scim_adapter(row, request=request).to_dict() for row in page]
        return _json_response(_list_response(resources, total, start))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if kwargs.get(self.lookup_url_kwarg):
            return _json_response(
                exceptions.SCIMException(
                    "POST creates resources on the collection, not on one resource.",
                    status=405,
                ).to_dict(),
                status=405,
            )
        return super().post(request, *args, **kwargs)


class ResourceSearchMixin(ScimResourceViewMixin):
    """POST /Users/.search and /Groups/.search with the query in the body."""

    # django-scim2's SearchView replaces the model with a marker string.
    @property
    def model_cls(self):
        return self.__class__.model_cls_getter()

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        body = self.load_body(request.body)
        if body.get("schemas") != [SchemaURI.SERACH_REQUEST]:
            raise exceptions.BadRequestError(
                "The body must be a SearchRequest.", scim_type="invalidSyntax"
            )
        setattr(
            request,
            PROJECTION_ATTRIBUTE,
            (_split(body.get("attributes")), _split(body.get("excludedAttributes"))),
        )
        start, count = self._page(request, body)
        query = body.get("filter")
        if query:
            return self._search(request, query, start, count)
        rows = self.model_cls.objects.filter(**self.get_extra_filter_kwargs(request))
        return self._build_response(
            request, rows.order_by("created_at", "pk"), start, count
        )


class UsersView(ScimResourceViewMixin, views.UsersView):
    pass


class GroupsView(ScimResourceViewMixin, views.GroupsView):
    pass


class UserSearchView(ResourceSearchMixin, views.UserSearchView):
    model_cls_getter = views.UsersView.model_cls_getter


class GroupSearchView(ResourceSearchMixin, views.GroupSearchView):
    model_cls_getter = views.GroupsView.model_cls_getter


class NotImplementedView(ScimViewMixin, views.SCIMView):
    """Root search, /Me and /Bulk, which Nexus does not implement."""

    implemented = False


class ServiceProviderConfigView(ScimViewMixin, views.ServiceProviderConfigView):
    pass


class ResourceTypesView(ScimViewMixin, views.ResourceTypesView):
    def get(self, request: HttpRequest, uuid: str | None = None, *args, **kwargs):
        types = {item["id"]: item for item in all_resource_types(request)}
        if uuid:
            if uuid not in types:
                raise exceptions.NotFoundError(uuid)
            return _json_response(types[uuid])
        listed = sorted(types.values(), key=lambda item: item["id"])
        return _json_response(_list_response(listed, len(listed), 1))


class SchemasView(ScimViewMixin, views.SchemasView):
    def get(self, request: HttpRequest, uuid: str | None = None, *args, **kwargs):
        schemas = {item["id"]: item for item in all_schemas(request)}
        if uuid:
            if uuid not in schemas:
                raise exceptions.NotFoundError(uuid)
            return _json_response(schemas[uuid])
        listed = sorted(schemas.values(), key=lambda item: item["id"])
        return _json_response(_list_response(listed, len(listed), 1))


class UnknownPathView(ScimViewMixin, views.SCIMView):
    """Every other path under the SCIM base: a SCIM 404 error."""

    http_method_names = ["get", "post", "put", "patch", "delete"]

    def _not_found(self, request: HttpRequest, *args: Any, **kwargs: Any):
        raise exceptions.NotFoundError(request.path)

    get = post = put = patch = delete = _not_found
