from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "apps.gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Loads the Celery app so shared tasks bind to it; nexus/__init__.py must not,
        # because the engine under nexus/ is imported by processes without Django.
        import nexus.celery  # noqa: F401
        from apps.gateway.changes import watch_models
        from apps.keys.models import VirtualKey
        from apps.providers.models import Model, ProviderConnection
        from apps.tenancy.models import Organization, Project

        watch_models([Organization, Project, VirtualKey, ProviderConnection, Model])
