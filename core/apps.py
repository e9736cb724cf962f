from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"

    def ready(self):
        from core import log_redaction
        from core import checks, signals  # noqa: F401  (deploy checks, worker start hooks)

        log_redaction.install()
