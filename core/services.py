"""Job state changes and the doorbell.

Every change of a job's state goes through a function here. Each writes the
database first and rings the job's channel-layer group after the transaction
commits; websocket consumers re-read the database when the bell rings (or on
their short poll), so a missed bell never loses anything. Running a job body
(the runner, progress, the stop check) is `core.jobkit`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from core.models import Job, JobEvent, JobStatus, WorkerCheck

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)
M = TypeVar("M", bound=models.Model)


class JobCancelled(Exception):
    """Raised inside a job body when its owner asked to stop it."""


class JobHandedOff(Exception):
    """Raised by a job body that handed its work to other tasks (a sweep's chunks): they finish the
    job, so the runner leaves it running."""


class JobAbandoned(Exception):
    """Raised inside a job body whose job no longer runs here (deleted, or failed by the recovery pass):
    the body stops computing and the row is left as it is."""


class WorkerStopping(JobAbandoned):
    """Raised inside a job body whose worker cluster is stopping (SIGTERM): the body stops computing and
    `core.jobkit.job_execute` marks the job interrupted (`job_interrupt`)."""


# --- doorbell -----------------------------------------------------------------


def stream_group(*, kind: str, pk: int) -> str:
    """Channel-layer group of one stream (a job, a session's chat…): `kind` is the model's label
    (`trades.export`), so the group is built from ids only, never from user text."""
    return f"stream.{kind}.{int(pk)}"


def user_group(*, pk: int) -> str:
    """Channel-layer group of every websocket a user has open (joined by core.ws_auth)."""
    return f"user.{int(pk)}"


def _group_send(group: str, message_type: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": message_type})
    except Exception:  # the database is the record; a lost message only delays
        logger.warning("%s to %s failed", message_type, group, exc_info=True)


def doorbell_ring(*, group: str) -> None:
    _group_send(group, "doorbell")


def user_sockets_close(*, user_id: int) -> None:
    """Close the user's websockets at once where the channel layer reaches them (Redis: every host;
    in-memory: this process). The consumers' own re-check on each poll closes the others."""
    _group_send(user_group(pk=user_id), "credentials.revoked")


def stream_ring(*, owner: models.Model) -> None:
    """Ring the stream of `owner` (a job, a session…) once the current transaction (if any) commits."""
    group = stream_group(kind=owner._meta.label_lower, pk=owner.pk)
    transaction.on_commit(lambda: doorbell_ring(group=group))


def job_ring(*, job: Job) -> None:
    stream_ring(owner=job)


def stream_append(*, owner: models.Model, rows: list[M], **fields: Any) -> list[M]:
    """Append `rows` (unsaved job events, log chunks, chat messages…) to the stream of `owner`, the row
    holding the stream's `event_seq`: number them in `seq`, insert them, ring after commit; one
    transaction. `fields` are written on the owner row in the same UPDATE. Raises the owner model's
    `DoesNotExist` when that row is gone."""
    if not rows:
        return rows
    model = type(owner)
    with transaction.atomic():
        # The UPDATE takes the owner row's lock, so concurrent writers get consecutive numbers.
        if not model.objects.filter(pk=owner.pk).update(event_seq=F("event_seq") + len(rows), **fields):
            raise model.DoesNotExist(f"{model._meta.label} {owner.pk} is gone")
        owner.event_seq = model.objects.filter(pk=owner.pk).values_list("event_seq", flat=True).get()
        for i, row in enumerate(rows):
            row.seq = owner.event_seq - len(rows) + 1 + i
        type(rows[0]).objects.bulk_create(rows)
        stream_ring(owner=owner)
    return rows


# --- lifecycle ----------------------------------------------------------------


def _update(job: J, **fields: Any) -> int:
    """Write `fields` on the job row and mirror them on the instance."""
    count = type(job).objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        if not hasattr(value, "resolve_expression"):
            setattr(job, name, value)
    return count


def job_enqueue(*, job: Job, func: str | None = None, task_name: str | None = None, **q_options: Any) -> None:
    """Queue `func(job.pk)` with django-q2 after the current transaction commits.

    `func` is the dotted path of a thin task in `<app>/tasks.py`; by default
    the model's `task_func`.
    """
    model = type(job)
    pk = job.pk
    func = func or model.task_func

    def _send() -> None:
        from django_q.tasks import async_task

        task_id = async_task(func, pk, task_name=task_name or f"{job.kind}:{pk}", **q_options)
        model.objects.filter(pk=pk).update(task_id=str(task_id or ""))

    transaction.on_commit(_send)
    job_ring(job=job)


def job_start(*, job: Job) -> bool:
    """Move a queued job to running. False when it must not run (already taken, cancelled)."""
    now = timezone.now()
    model = type(job)
    if job.cancel_requested or model.objects.filter(pk=job.pk, cancel_requested=True).exists():
        job_mark_cancelled(job=job)
        return False
    from core.workerhost import instance_id

    worker = instance_id()
    taken = model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker_id=worker
    )
    if not taken:
        job.refresh_from_db()
        return False
    job.status, job.started_at, job.heartbeat_at, job.worker_id = JobStatus.RUNNING, now, now, worker
    job_ring(job=job)
    return True


def job_heartbeat(*, job: Job) -> None:
    _update(job, heartbeat_at=timezone.now())


def job_progress(*, job: Job, fraction: float | None = None, message: str | None = None, **fields: Any) -> None:
    """Record progress (0..1) and/or a message, with any of the job's own fields; also a heartbeat."""
    fields["heartbeat_at"] = timezone.now()
    if fraction is not None:
        fields["progress"] = max(0.0, min(1.0, float(fraction)))
    if message is not None:
        fields["message"] = message[:500]
    _update(job, **fields)
    job_ring(job=job)


def job_stop(*, job: Job) -> JobCancelled | JobAbandoned | None:
    """Why a running body must stop now (one query): its owner asked (`JobCancelled`), its worker
    cluster is stopping (`WorkerStopping`, no query), or the job no longer runs here (`JobAbandoned`:
    deleted, or failed by the recovery pass); None to go on."""
    from core.workerhost import worker_stopping

    if worker_stopping():
        return WorkerStopping(f"{job.job_title()}: the worker is stopping.")
    row = type(job).objects.filter(pk=job.pk).values_list("cancel_requested", "status").first()
    if row is None:
        return JobAbandoned(f"{job.job_title()} was deleted while it ran.")
    job.cancel_requested = bool(row[0])
    if job.cancel_requested:
        return JobCancelled()
    if row[1] != JobStatus.RUNNING:
        return JobAbandoned(f"{job.job_title()} was marked {row[1]} while it ran (worker lost?).")
    return None


def job_raise_if_cancelled(*, job: Job) -> None:
    """The cooperative check of a job body (see `job_stop`); `core.jobkit.JobReporter` throttles it."""
    stop = job_stop(job=job)
    if stop is not None:
        raise stop


def job_cancel(*, job: Job, by=None) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one at its next check."""
    model = type(job)
    now = timezone.now()
    cancelled_now = model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, cancelled_by=by, finished_at=now,
        message="Cancelled before it started",
    )
    if not cancelled_now:
        model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True, cancelled_by=by)
    job.refresh_from_db()
    job_ring(job=job)
    return job


def job_succeed(*, job: Job, message: str = "", **fields: Any) -> None:
    _update(
        job, status=JobStatus.SUCCEEDED, progress=1.0, message=message[:500],
        finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields,
    )
    job_ring(job=job)


def job_fail(*, job: Job, error: str, message: str = "Failed", **fields: Any) -> None:
    _update(
        job, status=JobStatus.FAILED, error=error, message=message[:500],
        finished_at=timezone.now(), **fields,
    )
    job_ring(job=job)


def job_mark_cancelled(*, job: Job, message: str = "Cancelled", **fields: Any) -> None:
    _update(job, status=JobStatus.CANCELLED, message=message[:500], finished_at=timezone.now(), **fields)
    job_ring(job=job)


# --- ordered events -------------------------------------------------------------


def job_events_add(*, job: Job, events: Iterable[tuple[str, dict]]) -> list[JobEvent]:
    """Append events with consecutive sequence numbers, in one transaction."""
    rows = [JobEvent(job_kind=job.kind, job_id=job.pk, seq=0, kind=kind, data=data) for kind, data in events]
    return stream_append(owner=job, rows=rows)


def job_event_add(*, job: Job, kind: str, data: dict) -> JobEvent:
    return job_events_add(job=job, events=[(kind, data)])[0]


# --- the worker check (health page) ----------------------------------------------


@transaction.atomic
def worker_check_create(*, user, steps: int = 5, interval_ms: int = 200) -> WorkerCheck:
    """Queue a short job that proves a worker picks up work and streams its events (staff only)."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        raise PermissionDenied("Only administrators can run a worker check.")
    job = WorkerCheck(owner=user, steps=steps, interval_ms=interval_ms)
    job.full_clean()
    job.save()
    job_enqueue(job=job)
    return job


def worker_check_run(job: WorkerCheck) -> None:
    """Job body: `steps` tick events with progress, one every `interval_ms`."""
    for step in range(1, job.steps + 1):
        job_raise_if_cancelled(job=job)
        # The write time travels with the event so clients can measure latency.
        job_event_add(job=job, kind="tick", data={"step": step, "written_at": timezone.now().timestamp()})
        job_progress(job=job, fraction=step / job.steps, message=f"Step {step} of {job.steps}")
        time.sleep(job.interval_ms / 1000)
