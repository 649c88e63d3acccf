import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hooks", "0003_seal_webhook_headers"),
    ]

    operations = [
        migrations.AlterField(
            model_name="hook",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
