from django.apps import AppConfig


def _run_worker_lost(sender, job, **kwargs):
    """The recovery pass failed this run: record why, kill nothing."""
    from scripts_runner.models import EndReason

    sender.objects.filter(pk=job.pk).update(end_reason=EndReason.WORKER_LOST)
    job.end_reason = EndReason.WORKER_LOST


class ScriptsRunnerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "scripts_runner"

    def ready(self):
        from core.signals import job_worker_lost
        from scripts_runner.models import ScriptRun

        job_worker_lost.connect(_run_worker_lost, sender=ScriptRun, dispatch_uid="scripts_runner_run_worker_lost")
