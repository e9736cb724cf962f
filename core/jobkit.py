"""The job-body kit: what a job body uses while it runs.

Every job body has one signature, `body(job)`, and runs inside `core.services.job_execute`. A body
that reports often or blocks for long takes one `JobReporter`:

- `progress(...)` writes progress at most every `progress_seconds` (or when told to);
- `raise_if_stopped()` / `should_stop()` read the stop check (`core.services.job_stop`) at most
  every `check_seconds`; once the job is stopped the answer stays;
- `watch(...)` runs a thread beside one long blocking call (a DuckDB statement, …): at every beat it
  reads the call's progress, or, once the job is stopped, interrupts the call. The thread is not
  started when the body runs inline (`core.services.job_runs_inline`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from core import services
from core.models import Job


class JobReporter:
    def __init__(self, job: Job, *, progress_seconds: float = 0.5, check_seconds: float = 0.2,
                 inline: bool | None = None):
        self.job = job
        self.progress_seconds = progress_seconds
        self.check_seconds = check_seconds
        self.inline = services.job_runs_inline() if inline is None else inline
        self._body_thread = threading.get_ident()
        #: Why the job stopped (`JobCancelled` or `JobAbandoned`), once a check saw it.
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
        if fresh or now - self._checked >= self.check_seconds:
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

        return services.job_thread(name=f"watch-{self.job.kind}-{self.job.pk}", every=every, beat=beat)
