"""Recovering jobs whose worker stopped or was lost.

A stopping worker cluster interrupts what it still runs (`instance_jobs_interrupt`) and hands its
held tasks back (`instance_held_release`); the recovery pass (`jobs_recover`, run by every worker
host's recovery loop) finds jobs whose worker died and queued jobs whose task went missing. Each
state change goes through `core.services`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from core.models import Job, JobStatus
from core.services import job_enqueue, job_ring
from core.signals import job_worker_lost, jobs_recovered

logger = logging.getLogger(__name__)

# Why a running job stopped without finishing: the message users see, and the error text.
INTERRUPTED = ("Interrupted: the worker stopped", "interrupted: the worker stopped")
WORKER_LOST = ("Worker lost", "worker lost")


def job_models() -> list[type[Job]]:
    from django.apps import apps

    # A proxy (another view of a job table, such as the analyzer's token usage) is not a job kind of its own.
    return [m for m in apps.get_models() if issubclass(m, Job) and not m._meta.proxy]


def job_for_task(task: dict) -> Job | None:
    """The job a task package runs (`func(pk)` of a job kind's `task_func`, or the name the previous
    release gave it), or None."""
    from core.schedules import PREVIOUS_RELEASE_TASKS

    func, args = task.get("func"), task.get("args") or ()
    if not isinstance(func, str) or len(args) != 1:
        return None
    func = PREVIOUS_RELEASE_TASKS.get(func, func)
    for model in job_models():
        if model.task_func == func:
            try:
                return model.objects.filter(pk=int(args[0])).first()
            except (TypeError, ValueError):
                return None
    return None


def job_interrupt(*, job: Job, why: tuple[str, str] = INTERRUPTED, **match: Any) -> str:
    """End a running job that stopped without finishing (its worker stopped, or was lost): a safe kind
    that was not queued again yet is queued again ("requeued"), any other is failed with `why`
    (message, error) and `job_worker_lost` lets its app clean up ("failed"). `match` narrows the
    conditional update (e.g. a stale heartbeat); "" when the job had already moved on."""
    model = type(job)
    rows = model.objects.filter(pk=job.pk, status=JobStatus.RUNNING, **match)
    message, error = why
    if job.requeue_safe and job.requeues < 1:
        if not rows.update(status=JobStatus.QUEUED, started_at=None, heartbeat_at=None, worker_id="", progress=0.0,
                           requeues=F("requeues") + 1, message=f"{message}; queued again"[:500]):
            return ""
        job.refresh_from_db()
        job_enqueue(job=job)
        return "requeued"
    if not rows.update(status=JobStatus.FAILED, error=error, message=message, finished_at=timezone.now()):
        return ""
    job.refresh_from_db()
    job_worker_lost.send(sender=model, job=job)
    job_ring(job=job)
    return "failed"


def instance_jobs_interrupt(*, worker_id: str) -> dict[str, int]:
    """A stopping worker cluster's last act: every job still running under its id is interrupted."""
    counts = {"requeued": 0, "failed": 0}
    for model in job_models():
        for job in model.objects.filter(status=JobStatus.RUNNING, worker_id=worker_id):
            outcome = job_interrupt(job=job, worker_id=worker_id)
            if outcome:
                counts[outcome] += 1
    return counts


def instance_held_release(*, worker_id: str, broker=None) -> int:
    """Hand an instance's held tasks back to the queue (at its clean stop, or when it died): a task
    whose job still waits for it goes back to the head of the queue; the others (finished, or queued
    again under another task) are dropped. Answers how many went back."""
    from core.brokers import task_broker

    broker = broker or task_broker()
    released = 0
    for held in broker.held_tasks(worker_id):
        job = job_for_task(held.task)
        if job is not None and job.status == JobStatus.QUEUED and job.task_id == held.id:
            released += broker.held_release(worker_id, held)
        else:
            broker.held_drop(worker_id, held)
    return released


def instance_held_prune(*, worker_id: str, held: list, broker) -> list:
    """Drop from a live instance's held list the tasks whose job has finished (a worker process that
    died in a task never acknowledges it); answers what is still held."""
    kept = []
    for entry in held:
        job = job_for_task(entry.task)
        if job is not None and job.is_finished:
            broker.held_drop(worker_id, entry)
        else:
            kept.append(entry)
    return kept


def jobs_recover(*, stale_seconds: int | None = None, worker_stale_seconds: int | None = None) -> dict[str, int]:
    """The recovery pass (run by every worker host's recovery loop, one host at a time: `core.workerhost`).

    - A running job is lost when the worker cluster instance that runs it (`worker_id`) has no heartbeat
      newer than `worker_stale_seconds`, or began a new life after the job started, or when the job's own
      heartbeat is older than `stale_seconds` (its worker process died in a live cluster): a safe kind is
      queued again once, any other is failed "worker lost".
    - The tasks held by a dead instance (prefetched, never started) go back to the queue.
    - A queued job older than `stale_seconds` whose task is in no queue, on no live instance's held list
      and never ran is re-enqueued (failed when its task ran without starting it). A live instance's
      held tasks are never taken.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=stale_seconds or settings.JOB_HEARTBEAT_STALE_SECONDS)
    worker_stale = now - timedelta(seconds=worker_stale_seconds or settings.WORKER_STALE_SECONDS)
    # "requeued": jobs queued again, and a dead instance's held tasks handed back to the queue.
    counts = {"worker_lost": 0, "requeued": 0}
    try:
        return _jobs_recover(stale, worker_stale, counts)
    finally:
        jobs_recovered.send(sender=None)


def _jobs_recover(stale, worker_stale, counts: dict[str, int]) -> dict[str, int]:
    from django_q.models import Task

    from core.brokers import task_broker
    from core.models import WorkerHeartbeat

    beats = {name: (seen, began) for name, seen, began in
             WorkerHeartbeat.objects.values_list("name", "seen_at", "started_at")}
    lives = {name: began for name, (seen, began) in beats.items() if seen >= worker_stale}
    dead = [name for name in beats if name not in lives]
    handled: set[tuple[type[Job], int]] = set()

    def lose(job: Job, **match: Any) -> None:
        outcome = job_interrupt(job=job, why=WORKER_LOST, **match)
        if outcome:
            handled.add((type(job), job.pk))
            counts["worker_lost"] += 1
            counts["requeued"] += outcome == "requeued"

    for model in job_models():
        running = model.objects.filter(status=JobStatus.RUNNING)
        for job in running.filter(heartbeat_at__lt=stale):
            lose(job, heartbeat_at__lt=stale)
        for job in running.filter(worker_id__in=dead):
            lose(job, worker_id=job.worker_id)
        for job in running.filter(worker_id__in=list(lives)):
            if job.started_at and job.started_at < lives[job.worker_id]:  # begun in a previous life
                lose(job, worker_id=job.worker_id, started_at=job.started_at)
    # Instances dead for a day are forgotten (their jobs were marked long ago).
    WorkerHeartbeat.objects.filter(seen_at__lt=timezone.now() - timedelta(days=1)).delete()

    broker = None
    try:
        broker = task_broker()
        queued_ids = {t.id for t in broker.queued_tasks()}
        held_ids: set[str] = set()
        for holder in broker.holders():
            if holder in lives:
                held_ids |= {t.id for t in broker.held_tasks(holder)}
            else:
                counts["requeued"] += instance_held_release(worker_id=holder, broker=broker)
        queued_ids |= {t.id for t in broker.queued_tasks()}
    except Exception:
        logger.warning("could not list queued and held tasks", exc_info=True)
        return counts

    for model in job_models():
        waiting = model.objects.filter(status=JobStatus.QUEUED, created_at__lt=stale).exclude(task_id="")
        for job in waiting:
            if job.task_id in queued_ids or job.task_id in held_ids or (model, job.pk) in handled:
                continue
            # It never started (only `job_start` leaves "queued"), so any kind may be queued again: should
            # the old task still turn up, `job_start` lets one of the two run.
            if Task.objects.filter(id=job.task_id).exists():
                if model.objects.filter(pk=job.pk, status=JobStatus.QUEUED, task_id=job.task_id).update(
                    status=JobStatus.FAILED, finished_at=timezone.now(),
                    error="task ended without running the job", message="Worker lost",
                ):
                    job_ring(job=job)
                continue
            if model.task_func:
                job_enqueue(job=job, func=model.task_func)
                counts["requeued"] += 1
    return counts
