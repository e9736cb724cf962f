import time

from django.utils import timezone

from core import services
from core.models import WorkerCheck


def jobs_recover() -> dict:
    return services.jobs_recover()


def _worker_check_body(job: WorkerCheck) -> None:
    for step in range(1, job.steps + 1):
        services.job_raise_if_cancelled(job=job)
        # The write time travels with the event so clients can measure latency.
        services.job_event_add(job=job, kind="tick", data={"step": step, "written_at": timezone.now().timestamp()})
        services.job_progress(job=job, fraction=step / job.steps, message=f"Step {step} of {job.steps}")
        time.sleep(job.interval_ms / 1000)


def worker_check_run(pk: int) -> None:
    services.job_execute(model=WorkerCheck, pk=pk, body=_worker_check_body)
