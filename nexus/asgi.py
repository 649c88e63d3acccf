"""ASGI application: traffic endpoints on the fast path, the rest through Django."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
django.setup()

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from apps.gateway.asgi import GatewayApp

TRAFFIC_PREFIXES = ("/v1/", "/healthz", "/readyz")


def build_application(gateway: GatewayApp | None = None):
    """Return the ASGI app that sends /v1/ to gateway and everything else to Django."""
    gateway = gateway or GatewayApp()
    django_app = get_asgi_application()
    if settings.NEXUS_SERVE_STATIC:
        # The admin's and API docs' assets, for single-machine installs without a
        # web server in front.
        django_app = ASGIStaticFilesHandler(django_app)

    async def application(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(gateway, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith(TRAFFIC_PREFIXES):
            await gateway(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return application


async def _lifespan(gateway: GatewayApp, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await gateway.runtime.start()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway.runtime.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = build_application()
