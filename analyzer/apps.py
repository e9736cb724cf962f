import sys

from django.apps import AppConfig


def _answer_worker_lost(sender, job, **kwargs):
    """The recovery pass failed the answer: close it in the chat."""
    from analyzer.services import answer_close_lost

    answer_close_lost(answer=job)


def _processing_worker_lost(sender, job, **kwargs):
    """The recovery pass failed the processing: drop the stored files."""
    from analyzer.services import processing_close_lost

    processing_close_lost(job=job)


class AnalyzerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analyzer"

    def ready(self):
        from analyzer.models import Answer, Processing
        from core.signals import job_worker_lost

        job_worker_lost.connect(_answer_worker_lost, sender=Answer, dispatch_uid="analyzer_answer_worker_lost")
        job_worker_lost.connect(_processing_worker_lost, sender=Processing,
                                dispatch_uid="analyzer_processing_worker_lost")
        # Worker cluster only: import the agent (altair and its Vega-Lite schema take ~2 s to load) before
        # django-q2 forks its worker processes, so the first answer of each worker does not pay for it.
        if len(sys.argv) > 1 and sys.argv[1] == "qcluster":
            from analyzer.agent import plots

            plots.schema_warm()
