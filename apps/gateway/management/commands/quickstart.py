import socket

import uvicorn
from django.core.management.base import BaseCommand, CommandError

from apps.gateway.demo import install_demo
from nexus.fakeprovider.server import FakeProvider


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Command(BaseCommand):
    help = (
        "Start the gateway with a demo org, key and models served by the fake provider."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--port", type=int, default=8000, help="Gateway port on 127.0.0.1."
        )
        parser.add_argument(
            "--fake-port",
            type=int,
            default=9100,
            help="Fake provider port on 127.0.0.1.",
        )

    def handle(self, *args, port: int, fake_port: int, **options) -> None:
        ports = (
            ("gateway", port, "--port", "PORT"),
            ("fake provider", fake_port, "--fake-port", "FAKE_PORT"),
        )
        for label, number, option, variable in ports:
            if not port_free(number):
                raise CommandError(
                    f"Port {number} for the {label} is in use; pick another with "
                    f"{option} N, or with {variable}=N under make run."
                )
        fake = FakeProvider(port=fake_port).start()
        demo = install_demo(fake.url)
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(
            f"\nNexus is starting on {base}\n"
            f"Demo key (shown once): {demo.key}\n"
            "  This key is replaced on the next start, and then stops working.\n"
            f"Models: {', '.join(demo.models)}\n"
            f"Admin: {base}/admin/ (create a login with: .venv/bin/python manage.py createsuperuser)\n"
            "Fake provider, for your own provider connections (any non-empty API key):\n"
            f"  OpenAI-format base URL:    {fake.openai_base}\n"
            f"  Anthropic-format base URL: {fake.anthropic_base}\n"
            f"  Scripted replies:          POST {fake.url}/_fake/enqueue\n\n"
            "Try:\n"
            f"  curl {base}/v1/chat/completions -H 'Authorization: Bearer {demo.key}' \\\n"
            "    -H 'content-type: application/json' \\\n"
            '    -d \'{"model": "demo-chat", "messages": [{"role": "user", "content": "Hello"}]}\'\n'
        )
        try:
            uvicorn.run(
                "nexus.asgi:application",
                host="127.0.0.1",
                port=port,
                log_level="info",
                lifespan="on",
            )
        finally:
            fake.stop()
