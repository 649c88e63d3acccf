import time

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from apps.iam.admin_scope import OrgScopedAdminMixin
from apps.routing.models import Route
from apps.routing.selectors import RouteHealth, list_route_health
from apps.routing.services import reset_target_health


@admin.register(Route)
class RouteAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    # Routes are platform configuration that only superusers read and change, as in
    # the REST API.
    org_lookup = None
    list_display = [
        "name",
        "model",
        "strategy",
        "scope",
        "priority",
        "enabled",
    ]
    list_filter = ["enabled", "organization"]
    search_fields = ["name", "model", "description"]
    readonly_fields = ["target_health"]
    fieldsets = [
        (None, {"fields": ["name", "description", "model", "enabled", "priority"]}),
        (
            "Match",
            {
                "fields": [
                    "organization",
                    "project",
                    "key",
                    "match_headers",
                    "match_metadata",
                ]
            },
        ),
        ("Strategy", {"fields": ["config"]}),
        (
            "Attempts",
            {
                "fields": [
                    "retries",
                    "backoff_seconds",
                    "max_backoff_seconds",
                    "timeout_seconds",
                    "failover_statuses",
                ]
            },
        ),
        ("Health", {"fields": ["target_health"]}),
    ]
    change_list_template = "admin/routing/route/change_list.html"

    @admin.display(description="strategy")
    def strategy(self, obj: Route) -> str:
        config = obj.config
        if isinstance(config, dict):
            return str(
                config.get("strategy") or ("route" if "route" in config else "single")
            )
        return "single"

    @admin.display(description="scope")
    def scope(self, obj: Route) -> str:
        parts = []
        if obj.organization_id:
            parts.append(f"org {obj.organization}")
        if obj.project_id:
            parts.append(f"project {obj.project}")
        if obj.key_id:
            parts.append(f"key {obj.key}")
        if obj.match_headers:
            parts.append("headers")
        if obj.match_metadata:
            parts.append("metadata")
        return ", ".join(parts) or "all requests"

    @admin.display(description="target health")
    def target_health(self, obj: Route) -> str:
        if obj.pk is None:
            return "Saved routes show the health of their targets here."
        return mark_safe(_health_table(list_route_health([obj])[0]))

    def get_urls(self):
        urls = [
            path(
                "health/",
                self.admin_site.admin_view(self.health_view),
                name="routing_route_health",
            ),
            path(
                "health/reset/",
                self.admin_site.admin_view(self.reset_view),
                name="routing_route_health_reset",
            ),
        ]
        return urls + super().get_urls()

    def health_view(self, request: HttpRequest) -> HttpResponse:
        """List every route with the breaker state, error rate and latency of its targets."""
        if not self.has_view_permission(request):
            raise PermissionDenied("Permission routing:route.read is denied.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Route target health",
            "opts": self.model._meta,
            "reports": list_route_health(),
            "now": time.time(),
            "can_reset": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/routing/route/health.html", context)

    def reset_view(self, request: HttpRequest) -> HttpResponse:
        """Close one target's breaker (POST target_id)."""
        if request.method != "POST" or not self.has_change_permission(request):
            return HttpResponse(status=405 if request.method != "POST" else 403)
        target_id = request.POST.get("target_id", "")
        if target_id:
            reset_target_health(target_id, actor=request.user.get_username())
            self.message_user(
                request, f"Health of target {target_id} was reset.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:routing_route_health"))


def _health_table(report: RouteHealth) -> str:
    return render_to_string(
        "admin/routing/route/health_table.html",
        {"report": report, "now": time.time(), "can_reset": False},
    )
