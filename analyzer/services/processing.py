"""The processing job of an upload: load it into DuckDB (with live progress and cancel), fill the
session, then queue the auto-analysis; a processing that does not succeed keeps no files."""

from __future__ import annotations

import logging
import os
import tempfile
import time

from django.core.exceptions import ValidationError
from django.conf import settings
from django.db import transaction

from analyzer import conf
from analyzer.ingest import STAGES, IngestError, Progress, upload_ingest
from analyzer.models import AnalysisSession, Answer, Processing
from analyzer.services.answers import answer_request
from analyzer.services.sessions import session_files_remove
from core import services as core_services
from core.filecache import local_copy
from core.jobkit import JobReporter
from core.storage import publish, stored_delete, stored_walk
from core.models import JobStatus

logger = logging.getLogger(__name__)


class ProcessingProgress(Progress):
    """How `upload_ingest` reports on the job, through the job's reporter: each stage is a stage event, progress
    and a stop check; during the load a watcher reads DuckDB's query_progress() and interrupts DuckDB
    once the job is stopped."""

    poll_seconds = 1.0

    def __init__(self, reporter: JobReporter):
        self.reporter = reporter
        self.job: Processing = reporter.job
        # Seconds spent in each timed step (the "save" stage is DuckDB's checkpoint), recorded once done.
        self.seconds: dict[str, float] = {}
        self._step, self._since = None, time.monotonic()

    def step(self, name: str | None) -> None:
        now = time.monotonic()
        if self._step:
            self.seconds[self._step] = round(self.seconds.get(self._step, 0.0) + now - self._since, 4)
        self._step, self._since = name, now

    def stage(self, name: str) -> None:
        self.step("checkpoint" if name == "save" else name)
        self.reporter.raise_if_stopped(fresh=True)
        fraction, message = STAGES[name]
        self.reporter.progress(fraction=fraction, message=message, force=True, stage=name)
        core_services.job_event_add(job=self.job, kind="stage", data={"stage": name, "message": message})

    def watch(self, con, *, start: float, end: float):
        def tick() -> None:
            percent = con.query_progress()
            if percent is None or percent < 0:
                return
            fraction = min(end, start + (end - start) * min(100.0, float(percent)) / 100.0)
            self.reporter.progress(fraction=fraction, message=f"{STAGES['load'][1]} {percent:.0f}%", force=True,
                                   min_step=0.01)

        return self.reporter.watch(every=self.poll_seconds, tick=tick, on_stop=con.interrupt)


def _build_root() -> str:
    folder = settings.FILE_UPLOAD_TEMP_DIR
    os.makedirs(folder, exist_ok=True)
    return folder


def processing_run(job: Processing) -> None:
    """The job body: validate and load the stored upload, fill the session, then queue the auto-analysis.

    A file that cannot be used ends the job failed with the reason (shown on the session page and in the
    API); its stored files are removed, and the session, which cannot be queried, only shows the error.
    """
    session = job.session
    reporter = JobReporter(job)
    started = time.monotonic()
    progress = ProcessingProgress(reporter)
    try:
        # DuckDB reads and writes local files: the upload is this host's cached copy of the stored one; the
        # database is built in a local folder, then stored (and kept as this host's cached copy).
        with local_copy(session.original_name) as src, tempfile.TemporaryDirectory(
                prefix="analyzer-build-", dir=_build_root()) as build:
            data_local = os.path.join(build, "data.duckdb")
            result = upload_ingest(src=src, filename=session.filename, data_dst=data_local,
                                   progress=progress)
            publish(session.data_name, data_local, keep_local_copy=True)
    except FileNotFoundError:
        logger.error("analyzer session %s: the store does not hold %s", session.pk, session.original_name)
        processing_fail(job=job, error="The uploaded file is no longer in storage; upload it again.")
        return
    except (core_services.JobCancelled, core_services.JobAbandoned):
        processing_cleanup(session=session)
        raise
    except IngestError as exc:
        if reporter.should_stop(fresh=True):  # the watcher interrupted DuckDB
            processing_cleanup(session=session)
            raise reporter.stop from None
        processing_fail(job=job, error=str(exc))
        return
    except Exception as exc:
        logger.exception("processing of analyzer session %s failed", session.pk)
        processing_fail(job=job, error=f"Something went wrong while processing the file ({type(exc).__name__}).")
        return
    progress.step(None)
    original_name = session.original_name
    keep = conf.KEEP_ORIGINAL
    with transaction.atomic():
        AnalysisSession.objects.filter(pk=session.pk).update(
            file_format=result.file_format,
            row_count=result.row_count,
            column_count=len(result.columns),
            columns=result.columns,
            preview=result.preview,
            profile=result.profile,
            detection=result.detection,
            processing_seconds=round(time.monotonic() - started, 3),
            original_name=original_name if keep else "",
        )
        session.refresh_from_db()
        Processing.objects.filter(pk=job.pk).update(stage="done")
        job.stage = "done"
        core_services.job_events_add(job=job, events=[
            ("timings", {"seconds": progress.seconds, "total": round(time.monotonic() - started, 4)}),
            ("stage", {"stage": "done", "message": "Ready."}),
        ])
        core_services.job_succeed(job=job, message=f"{result.row_count:,} rows × {len(result.columns)} columns")
        if not keep:
            transaction.on_commit(lambda: stored_delete(original_name))
    if job.auto_analyze:
        try:
            answer_request(session=session, user=job.owner, mode=Answer.Mode.AUTO_ANALYZE)
        except ValidationError:
            logger.warning("auto-analysis of session %s not started", session.pk, exc_info=True)


def processing_cleanup(*, session: AnalysisSession) -> None:
    """Remove the files of a session whose processing did not succeed (the row stays, with the error)."""
    session_files_remove(folder=session.storage_dir)
    AnalysisSession.objects.filter(pk=session.pk).update(original_name="")
    session.original_name = ""


def processing_fail(*, job: Processing, error: str) -> None:
    processing_cleanup(session=job.session)
    Processing.objects.filter(pk=job.pk).update(stage="failed")
    job.stage = "failed"
    core_services.job_event_add(job=job, kind="stage", data={"stage": "failed", "message": error})
    core_services.job_fail(job=job, error=error, message="Could not process the file")


def processing_cancel(*, job: Processing, by=None) -> Processing:
    """Stop the processing: a queued job is cancelled at once (files removed here), a running one at its next
    check (the watcher interrupts DuckDB; the job body removes the files)."""
    core_services.job_cancel(job=job, by=by)
    if job.status == JobStatus.CANCELLED:
        processing_cleanup(session=job.session)
    return job


def processing_after_run(*, job: Processing | None) -> None:
    """After the task: a job that did not succeed keeps no files (also when it never ran: cancelled while queued)."""
    if job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        session = AnalysisSession.objects.filter(pk=job.session_id).first()
        if session is not None and (session.original_name or any(stored_walk(session.storage_dir))):
            processing_cleanup(session=session)


def processing_close_lost(*, job: Processing) -> None:
    """The worker died while processing (core's recovery already failed the job): drop the files."""
    processing_cleanup(session=job.session)
