import json
import uuid

from django.db import migrations

from apps.hooks.models import MASKED_HEADER, headers_associated_data
from apps.providers.vault import key_ring
from nexus.engine.vault import Sealed

WEBHOOK = "webhook"
FIELDS = ["uid", "options", "headers_ciphertext", "headers_key_id"]


def plain_headers(hook) -> dict:
    options = hook.options if isinstance(hook.options, dict) else {}
    headers = options.get("headers")
    if hook.kind != WEBHOOK or not isinstance(headers, dict):
        return {}
    return headers


def seal_headers(apps, schema_editor) -> None:
    """Give every hook its own uid and seal the header values of webhook hooks."""
    Hook = apps.get_model("hooks", "Hook")
    for hook in Hook.objects.all():
        hook.uid = uuid.uuid4()
        headers = plain_headers(hook)
        if headers:
            sealed = key_ring().seal(
                json.dumps(headers), headers_associated_data(hook.uid)
            )
            hook.headers_ciphertext, hook.headers_key_id = sealed.blob, sealed.key_id
            masked = dict.fromkeys(headers, MASKED_HEADER)
            hook.options = {**hook.options, "headers": masked}
        hook.save(update_fields=FIELDS)


def unseal_headers(apps, schema_editor) -> None:
    """Put the decrypted header values back into the options of webhook hooks."""
    Hook = apps.get_model("hooks", "Hook")
    for hook in Hook.objects.exclude(headers_ciphertext=""):
        sealed = Sealed(hook.headers_key_id, hook.headers_ciphertext)
        stored = json.loads(key_ring().open(sealed, headers_associated_data(hook.uid)))
        headers = {
            name: stored.get(name, value) if value == MASKED_HEADER else value
            for name, value in plain_headers(hook).items()
        }
        hook.options = {**hook.options, "headers": headers}
        hook.headers_ciphertext = hook.headers_key_id = ""
        hook.save(update_fields=FIELDS)


class Migration(migrations.Migration):
    dependencies = [
        ("hooks", "0002_hook_sealed_headers"),
    ]

    operations = [
        migrations.RunPython(seal_headers, unseal_headers),
    ]
