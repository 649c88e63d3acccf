from django.apps import AppConfig


class IamConfig(AppConfig):
    name = "apps.iam"
    label = "iam"
    verbose_name = "Identity and access"
    default_auto_field = "django.db.models.BigAutoField"
