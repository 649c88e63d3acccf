from django.core.management.base import BaseCommand, CommandError

from apps.providers.services import rekey_credentials
from nexus.engine.vault import VaultError


class Command(BaseCommand):
    help = "Re-encrypt every stored credential and token under NEXUS_VAULT_ACTIVE_KEY."

    def handle(self, *args, **options) -> None:
        try:
            changed = rekey_credentials()
        except VaultError as exc:
            raise CommandError(
                f"{exc} Keep the old key in NEXUS_VAULT_KEYS until re-keying has finished."
            ) from None
        self.stdout.write(f"Re-encrypted {changed} credential(s).")
