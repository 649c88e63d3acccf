"""The API root, which lists every resource, and the 404 for unknown paths."""

from typing import Any

from django.conf import settings
from django.http import HttpResponsePermanentRedirect
from django.urls import Resolver404, resolve
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import APIRootView, DefaultRouter
from rest_framework.views import APIView

from apps.iam.context import request_id_for


class RequestIdMixin:
    """Set the X-Request-ID response header, as ScopedViewSet does."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-ID"] = request_id_for(request)
        return response


class ApiRootView(RequestIdMixin, APIRootView):
    """Links to the list of every resource of the API."""


class ApiRouter(DefaultRouter):
    """The router of every viewset; its root also links views outside the router."""

    APIRootView = ApiRootView

    def __init__(self, *, extra_root_entries: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_root_entries = extra_root_entries

    def get_api_root_view(self, api_urls=None):
        list_route = self.routes[0].name
        entries = {
            prefix: list_route.format(basename=basename)
            for prefix, _, basename in self.registry
        }
        entries.update(self.extra_root_entries)
        return self.APIRootView.as_view(api_root_dict=dict(sorted(entries.items())))


class UnknownPathView(RequestIdMixin, APIView):
    """Return 404 with the error body for a path under /api/ that no route matches.

    Without a trailing slash, a path that names an endpoint with one is redirected
    there, as Django's APPEND_SLASH does for paths that match no route.
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    schema = None

    def handle(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if self._has_slash_route(request.path_info):
            return HttpResponsePermanentRedirect(
                request.get_full_path(force_append_slash=True)
            )
        raise NotFound(f'No API endpoint matches the path "{request.path_info}".')

    get = post = put = patch = delete = head = options = handle

    @classmethod
    def _has_slash_route(cls, path: str) -> bool:
        if not settings.APPEND_SLASH or path.endswith("/"):
            return False
        try:
            match = resolve(f"{path}/")
        except Resolver404:
            return False
        return getattr(match.func, "view_class", None) is not cls
