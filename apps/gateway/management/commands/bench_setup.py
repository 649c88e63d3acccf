from pathlib import Path

from django.core.management.base import BaseCommand

from apps.keys.services import issue_key
from apps.providers.models import Model, ProviderConnection
from apps.providers.services import set_credential
from apps.quotas.models import Quota
from apps.tenancy.models import Organization


class Command(BaseCommand):
    help = "Configure the benchmark models on the mock upstream and write a fresh key to a file."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--upstream",
            default="http://127.0.0.1:18080/v1",
            help="Mock upstream base URL.",
        )
        parser.add_argument(
            "--upstream-key",
            default="sk-mock-upstream",
            help="Key the mock upstream expects.",
        )
        parser.add_argument(
            "--key-file", required=True, help="File the new virtual key is written to."
        )

    def handle(
        self, *args, upstream: str, upstream_key: str, key_file: str, **options
    ) -> None:
        org, _ = Organization.objects.get_or_create(
            slug="bench", defaults={"name": "Benchmark"}
        )
        connection, _ = ProviderConnection.objects.get_or_create(
            name="bench-mock",
            defaults={"provider_type": "openai", "base_url": upstream},
        )
        connection.base_url = upstream
        set_credential(connection, upstream_key)
        connection.save()
        anthropic, _ = ProviderConnection.objects.get_or_create(
            name="bench-mock-anthropic", defaults={"provider_type": "anthropic"}
        )
        # The mock serves Anthropic's /v1/messages on the same port; its root is the base.
        anthropic.base_url = upstream.removesuffix("/v1")
        set_credential(anthropic, upstream_key)
        anthropic.save()
        Model.objects.update_or_create(
            name="mock-claude",
            defaults={
                "connection": anthropic,
                "upstream_model": "mock-claude",
                "input_price": 1,
                "output_price": 2,
            },
        )
        for name, kind in (
            ("mock-gpt", Model.KIND_CHAT),
            ("mock-embed", Model.KIND_EMBEDDINGS),
        ):
            Model.objects.update_or_create(
                name=name,
                defaults={
                    "connection": connection,
                    "upstream_model": name,
                    "kind": kind,
                    "input_price": 1,
                    "output_price": 2,
                },
            )
        # Accounting on: every request reserves and settles against this USD budget.
        Quota.objects.update_or_create(
            organization=org,
            name="bench budget",
            defaults={
                "axis": "key",
                "unit": "usd",
                "window": "calendar_month",
                "hard_limit": 1_000_000,
            },
        )
        issued = issue_key(organization=org, name="bench key")
        Path(key_file).write_text(issued.plaintext, encoding="utf-8")
        self.stdout.write(f"Benchmark key written to {key_file}.")
