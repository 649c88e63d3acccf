from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "apps.routing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.gateway.changes import watch_models
        from apps.gateway.pipeline import register_router
        from apps.gateway.snapshot_builder import EXTENSION_BUILDERS
        from apps.iam.resources import REGISTRY, ResourceType
        from apps.routing.models import Route
        from apps.routing.router import build_router
        from apps.routing.snapshot import build_route_table
        from nexus.engine.routing.router import EXTENSION

        # Routes are platform configuration, like models: superusers change them.
        REGISTRY[Route] = ResourceType("routing", "route", None)
        EXTENSION_BUILDERS[EXTENSION] = build_route_table
        watch_models([Route])
        register_router(build_router)
