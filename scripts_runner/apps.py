from django.apps import AppConfig


class ScriptsRunnerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "scripts_runner"
