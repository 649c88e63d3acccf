from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "apps.keys"
    default_auto_field = "django.db.models.BigAutoField"
