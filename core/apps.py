from pathlib import Path

from django.apps import AppConfig
from django.db.models.signals import pre_save


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"

    def ready(self):
        from django.conf import settings

        # The embedded mode's local folders (the SQLite file and secret key live in VAR_DIR).
        for folder in (settings.VAR_DIR, settings.STATIC_ROOT, settings.FILE_UPLOAD_TEMP_DIR):
            Path(folder).mkdir(parents=True, exist_ok=True)

        from django_q.models import Schedule
        from django_q.signals import pre_enqueue

        from core import log_redaction
        from core import checks, schedules, signals  # noqa: F401  (deploy checks, worker start hooks)

        log_redaction.install()
        pre_save.connect(schedules.check_schedule_save, sender=Schedule, dispatch_uid="core.schedules.save")
        pre_enqueue.connect(schedules.check_enqueue, dispatch_uid="core.schedules.enqueue")
