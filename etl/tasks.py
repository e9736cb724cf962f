"""django-q2 entry points: thin wrappers around services."""

from core.jobkit import job_execute
from core.schedules import previous_release_task
from etl import pipeline, services
from etl.models import FetchJob, RecordExport


def fetch_job_execute(pk: int) -> None:
    job_execute(model=FetchJob, pk=pk, body=pipeline.fetch_job_execute)


def fetch_job_auto_retry(pk: int, attempt: int) -> bool:
    return services.fetch_job_auto_retry(pk=pk, attempt=attempt)


def record_export_execute(pk: int) -> None:
    job_execute(model=RecordExport, pk=pk, body=services.record_export_execute)


def fetch_job_request_daily() -> int:
    return services.fetch_job_request_daily()


def __getattr__(name: str):
    # Tasks queued by the previous release under their old names (core.schedules.PREVIOUS_RELEASE_TASKS).
    return previous_release_task(__name__, name)
