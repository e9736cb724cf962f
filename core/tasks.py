"""django-q2 entry points: thin, they call the service of the same name."""

from core import recovery, services
from core.jobkit import job_execute
from core.models import WorkerCheck


def jobs_recover() -> dict:
    return recovery.jobs_recover()


def worker_check_run(pk: int) -> None:
    job_execute(model=WorkerCheck, pk=pk, body=services.worker_check_run)
