from django.core.management.base import BaseCommand

from apps.providers.services import rekey_credentials


class Command(BaseCommand):
    help = "Re-encrypt every provider credential under NEXUS_VAULT_ACTIVE_KEY."

    def handle(self, *args, **options) -> None:
        changed = rekey_credentials()
        self.stdout.write(f"Re-encrypted {changed} credential(s).")
