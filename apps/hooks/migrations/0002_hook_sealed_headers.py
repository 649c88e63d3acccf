import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hooks", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="hook",
            name="headers_ciphertext",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="hook",
            name="headers_key_id",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        # Nullable first: a callable default gives every existing row the same
        # value, so 0003 assigns one per row and 0004 makes the column unique.
        migrations.AddField(
            model_name="hook",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="hook",
            name="options",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The hook kind's options as a JSON object. Webhook header "
                "values are stored encrypted and shown as ********; leave that in "
                "place to keep a value.",
            ),
        ),
    ]
