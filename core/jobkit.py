"""The job-body kit: running a job body, and what the body uses while it runs.

Every job body has one signature, `body(job)`, and runs inside `job_execute`, which starts the job,
keeps its heartbeat and ends it. A body that reports often or blocks for long takes one `JobReporter`:

- `progress(...)` writes progress at most every `progress_seconds` (or when told to);
- `raise_if_stopped()` / `should_stop()` read the stop check (`core.services.job_stop`) at most
  every `check_seconds`; once the job is stopped the answer stays;
- `watch(...)` runs a thread beside one long blocking call (a DuckDB statement, …): at every beat it
  reads the call's progress, or, once the job is stopped, interrupts the call.

Whether the body runs inline (`job_runs_inline`) is decided here only: inline, no thread starts.
State changes themselves stay in `core.services`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from core import recovery, services
from core.models import Job, JobStatus
from core.workerhost import worker_stopping

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)


# --- running a body ---------------------------------------------------------------------------------


def job_runs_inline() -> bool:
    """Whether a job body runs inside its caller (django-q2's sync mode, or a test's transaction).
    There it holds the only usable database connection, so no helper thread may start."""
    from django_q.conf import Conf

    return bool(Conf.SYNC) or connection.in_atomic_block


@contextlib.contextmanager
def job_thread(*, name: str, every: float, beat: Callable[[], Any]):
    """Call `beat()` every `every` seconds in a daemon thread while the block runs. The thread has its
    own database connection, closed when it ends; an error in `beat` stops the thread (logged)."""
    stopped = threading.Event()

    def run() -> None:
        try:
            while not stopped.wait(every):
                beat()
        except Exception:
            logger.warning("%s stopped", name, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True, name=name)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join(timeout=10)


def error_for_users(exc: BaseException) -> str:
    """The message a user sees for an unexpected failure: the exception's kind and text, with no
    traceback and no host paths (the traceback goes to the worker log)."""
    text = f"{type(exc).__name__}: {exc}"
    roots = {str(settings.BASE_DIR), str(getattr(settings, "VAR_DIR", "")), str(settings.MEDIA_ROOT),
             str(getattr(settings, "PLATFORM_FILE_CACHE_DIR", "")), str(getattr(settings, "FILE_UPLOAD_TEMP_DIR", "")),
             tempfile.gettempdir(), sys.prefix, sys.base_prefix, os.path.expanduser("~")}
    for root in sorted((r for r in roots if r and r != "/"), key=len, reverse=True):
        text = text.replace(root.rstrip("/") + "/", "…/").replace(root, "…")
    return text[:2000]


def job_execute(*, model: type[J], pk: int, body: Callable[[J], Any]) -> J | None:
    """The one task runner: start, heartbeat, run `body(job)`, finish.

    Every job body has this one signature: `body(job)`. It reports progress and checks for a stop
    through a `JobReporter` (or `job_progress` / `job_raise_if_cancelled` directly), and may
    finish the job itself (e.g. with extra fields via `job_succeed(job=..., rows=...)`); if it returns
    while the job is still running, the job succeeds. `JobCancelled` ends it cancelled,
    `JobAbandoned` leaves the row as it is, `JobHandedOff` leaves it running for the tasks the body
    queued to finish, any other exception ends it failed with the error text.
    """
    inline = job_runs_inline()
    if not inline:
        close_old_connections()
    job = model.objects.filter(pk=pk).first()
    if job is not None and job.status == JobStatus.QUEUED and worker_stopping():
        # A task taken just before the cluster began to stop: another worker runs it.
        services.job_enqueue(job=job)
        return job
    if job is None or not services.job_start(job=job):
        return job
    # Not inline: an inline (test) run holds the only usable connection.
    beat = contextlib.nullcontext() if inline else job_thread(
        name=f"heartbeat-{job.kind}-{job.pk}", every=max(1.0, settings.JOB_HEARTBEAT_STALE_SECONDS / 6),
        beat=lambda: model.objects.filter(pk=pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now()),
    )
    with beat:
        try:
            body(job)
            job.refresh_from_db(fields=["status"])
            if job.status == JobStatus.RUNNING:
                services.job_succeed(job=job, message=job.message or "Done")
        except services.JobCancelled:
            services.job_mark_cancelled(job=job)
        except services.WorkerStopping:
            recovery.job_interrupt(job=job)
        except services.JobHandedOff:
            # No longer this instance's: its own heartbeat (beaten by the tasks that finish it) is what
            # the recovery pass judges, and this instance's stop or death leaves it alone.
            model.objects.filter(pk=pk, status=JobStatus.RUNNING, worker_id=job.worker_id).update(worker_id="")
        except services.JobAbandoned as exc:
            logger.warning("%s: stopped computing: %s", model._meta.label_lower, exc)
        except Exception as exc:
            logger.exception("%s failed", job)
            services.job_fail(job=job, error=error_for_users(exc))
    try:
        job.refresh_from_db()
    except model.DoesNotExist:  # deleted while it ran
        return None
    return job


# --- the reporter -----------------------------------------------------------------------------------


class JobReporter:
    """One job body's progress, stop check and watcher (see the module's docstring)."""

    def __init__(self, job: Job, *, progress_seconds: float = 0.5, check_seconds: float = 0.2,
                 inline: bool | None = None):
        self.job = job
        self.progress_seconds = progress_seconds
        self.check_seconds = check_seconds
        self.inline = job_runs_inline() if inline is None else inline
        self._body_thread = threading.get_ident()
        #: Why the job stopped (`JobCancelled`, `WorkerStopping` or `JobAbandoned`), once a check saw it.
        self.stop: services.JobCancelled | services.JobAbandoned | None = None
        self._written = self._checked = float("-inf")
        self._fraction: float | None = None

    # --- progress -------------------------------------------------------------------------------

    def progress(self, *, fraction: float | None = None, message: str | None = None, force: bool = False,
                 min_step: float = 0.0, **fields: Any) -> bool:
        """Write progress (and any of the job's own fields) unless the last write is under
        `progress_seconds` old (`force` skips that wait) or `fraction` grew by less than `min_step`.
        Answers whether it wrote."""
        now = time.monotonic()
        if not force and now - self._written < self.progress_seconds:
            return False
        if min_step and fraction is not None and self._fraction is not None and fraction - self._fraction < min_step:
            return False
        self._written = now
        if fraction is not None:
            self._fraction = fraction
        services.job_progress(job=self.job, fraction=fraction, message=message, **fields)
        return True

    # --- the stop check -------------------------------------------------------------------------

    def should_stop(self, *, fresh: bool = False) -> bool:
        """Whether the body must stop (cancelled or abandoned); reads the database at most every
        `check_seconds` unless `fresh`. Inline, only the body's own thread reads it: another thread
        cannot see the body's uncommitted rows (it answers what the body last read)."""
        if self.stop is not None:
            return True
        if self.inline and threading.get_ident() != self._body_thread:
            return False
        now = time.monotonic()
        if fresh or now - self._checked >= self.check_seconds or worker_stopping():
            self._checked = now
            self.stop = services.job_stop(job=self.job)
        return self.stop is not None

    def raise_if_stopped(self, *, fresh: bool = False) -> None:
        """Raise `JobCancelled` or `JobAbandoned` when the body must stop (see `should_stop`)."""
        if self.should_stop(fresh=fresh):
            raise self.stop

    @property
    def cancelled(self) -> bool:
        """The owner asked to stop (as opposed to the job being abandoned)."""
        return isinstance(self.stop, services.JobCancelled)

    # --- a watched blocking call ----------------------------------------------------------------

    def watch(self, *, every: float = 1.0, tick: Callable[[], Any] | None = None,
              on_stop: Callable[[], Any] | None = None):
        """A context around one long blocking call. Every `every` seconds a thread checks for a stop:
        once the job is stopped it calls `on_stop()` (at every beat: an interrupt that lands before
        the call has started is lost, so one is not enough), else `tick()`. Inline, nothing runs."""
        if self.inline:
            return contextlib.nullcontext()

        def beat() -> None:
            if self.should_stop(fresh=True):
                if on_stop is not None:
                    on_stop()
            elif tick is not None:
                tick()

        return job_thread(name=f"watch-{self.job.kind}-{self.job.pk}", every=every, beat=beat)
