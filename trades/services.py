"""Writes of the trades app: export requests, the export job body, cancel, retention."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import JobStatus
from core.storage import stored_delete, stored_exists
from core.jobkit import JobReporter, job_execute
from core.services import job_cancel, job_ring, job_succeed
from trades import conf, selectors, writers
from trades.slots import export_admit, export_enqueue, exports_dispatch, slot_release
from trades.models import FORMAT_EXTENSIONS, Export
from trades.params import ExportParams

logger = logging.getLogger(__name__)

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class ExportConflict(Exception):
    """An identical export is being cancelled; the request can be retried shortly."""


@dataclass
class ExportRequestResult:
    export: Export
    outcome: str  # "created" | "attached" | "existing"


def _file_present(export: Export) -> bool:
    """Whether the store (shared by every host) still holds the export's file. A store that cannot
    answer right now counts as holding it: an export is expired only for a file known to be gone."""
    if not export.file_name:
        return False
    try:
        return stored_exists(export.file_name)
    except Exception:
        logger.warning("could not ask the store for %s", export.file_name, exc_info=True)
        return True


def export_request(*, user, params: ExportParams) -> ExportRequestResult:
    """Return a finished identical export, attach to a running one, or queue a new one. Never blocks."""
    params = params.clean()
    signature = params.signature(owner_id=user.pk)
    done = (
        Export.objects.filter(owner=user, signature=signature, status=JobStatus.SUCCEEDED, expired_at__isnull=True)
        .order_by("-finished_at")
        .first()
    )
    if done is not None:
        if _file_present(done):
            return ExportRequestResult(done, "existing")
        export_expire(export=done, reason="file missing from storage")
    active = Export.objects.filter(owner=user, signature=signature, status__in=ACTIVE).first()
    if active is not None:
        if active.cancel_requested:
            raise ExportConflict("An identical export is being cancelled; try again in a moment.")
        return ExportRequestResult(active, "attached")
    export = Export(owner=user, signature=signature, params=params.to_json(), format=params.format)
    export.full_clean(exclude=["owner"])
    try:
        with transaction.atomic():
            export.save()
            export_enqueue(export=export)
    except IntegrityError:
        # A concurrent identical request won the race: attach to it.
        active = Export.objects.filter(owner=user, signature=signature, status__in=ACTIVE).first()
        if active is None:
            raise
        return ExportRequestResult(active, "attached")
    exports_dispatch()  # cheap; also hands on a slot whose hand-over a crash interrupted
    return ExportRequestResult(export, "created")


def export_cancel(*, export: Export, by) -> Export:
    """Cancel: a queued (or parked) export at once, a running one at its next progress check."""
    export = job_cancel(job=export, by=by)
    if export.is_finished:
        exports_dispatch()  # it may have been handed a slot before its task started
    return export


# --- the job body ---------------------------------------------------------------


class _Progress:
    """The writers' `on_progress(rows)`: rows written so far, on the export through the job's reporter,
    which also makes it the cooperative cancel check (both at most every EXPORT_PROGRESS_SECONDS)."""

    def __init__(self, reporter: JobReporter, estimate: int | None):
        self.reporter = reporter
        self.export = reporter.job
        self.estimate = estimate

    def __call__(self, rows: int) -> None:
        if self.estimate:
            fraction = min(0.99, rows / self.estimate)
            message = f"{rows:,} rows written ({rows / self.estimate:.0%} of ~{self.estimate:,})"
        else:
            fraction, message = None, f"{rows:,} rows written"
        self.reporter.progress(fraction=fraction, message=message, rows_written=rows)
        self.reporter.raise_if_stopped()


TEST_HOLD_MESSAGE = "Held before writing (TRADES_EXPORT_TEST_HOLD_FILE)"


def _test_hold(*, reporter: JobReporter) -> None:
    """Tests only: wait while conf.EXPORT_TEST_HOLD_FILE exists (cancellation is still checked)."""
    path = conf.EXPORT_TEST_HOLD_FILE
    if not path or not os.path.exists(path):
        return
    reporter.progress(message=TEST_HOLD_MESSAGE, force=True)
    while os.path.exists(path):
        reporter.raise_if_stopped()
        time.sleep(0.05)


def export_build(export: Export) -> None:
    """Job body (run once `export_admit` gave it a slot): stream the export to a temporary file,
    publish it atomically, apply retention."""
    reporter = JobReporter(export, progress_seconds=conf.EXPORT_PROGRESS_SECONDS,
                           check_seconds=conf.EXPORT_PROGRESS_SECONDS)
    target = None
    try:
        params = ExportParams.from_json(export.params)
        reporter.progress(fraction=0.0, message="Estimating rows", force=True)
        estimate = selectors.export_estimate_planner(params=params)
        if estimate is None:
            estimate, _capped = selectors.export_estimate(params=params, cap=max(conf.ESTIMATE_CAP, 10_000_000))
        Export.objects.filter(pk=export.pk).update(estimated_rows=estimate)
        export.estimated_rows = estimate
        reporter.raise_if_stopped(fresh=True)
        _test_hold(reporter=reporter)
        reporter.progress(fraction=0.0, message="Writing rows", force=True)
        name = writers.export_storage_name(owner_id=export.owner_id, pk=export.pk, extension=FORMAT_EXTENSIONS[export.format])
        target = writers.AtomicExportFile(name, tag=str(export.pk))
        select = selectors.export_select(params=params)
        rows = writers.write_export(params=params, select=select, target=target,
                                    on_progress=_Progress(reporter, estimate))
        reporter.raise_if_stopped(fresh=True)
        saved = target.commit()
        job_succeed(
            job=export,
            message=f"{rows:,} rows written",
            rows_written=rows,
            file_name=saved,
            size_bytes=target.size,
            sha256=target.hexdigest,
            slot=None,
        )
    finally:
        if target is not None:
            target.abort()  # no-op once committed: a failed or cancelled export leaves no file
        slot_release(export=export)
    exports_retention_apply()


def export_run(*, pk: int) -> None:
    """The task: run the export if it gets a slot, else park it (the task returns at once)."""
    if export_admit(pk=pk):
        job_execute(model=Export, pk=pk, body=export_build)
        # The slot is free again (the export finished, failed or was cancelled, perhaps before it
        # started): hand it to the next waiting export.
        exports_dispatch()


def export_cleanup_after_loss(*, export: Export) -> None:
    """Called by the recovery pass when the worker of a running export vanished."""
    slot_release(export=export)
    writers.partial_files_remove(owner_id=export.owner_id, tag=str(export.pk))
    exports_dispatch()


# --- retention ------------------------------------------------------------------


def export_expire(*, export: Export, reason: str = "retention") -> None:
    name = export.file_name
    if name:
        try:
            stored_delete(name)
        except Exception:  # already gone or storage hiccup: the row still says expired
            logger.warning("could not delete %s", name, exc_info=True)
    Export.objects.filter(pk=export.pk).update(expired_at=timezone.now(), message=f"Expired ({reason})"[:500])
    export.refresh_from_db()
    job_ring(job=export)


def exports_retention_apply() -> int:
    """Keep the latest K files per user, the files of the N most recent users, and none too old."""
    available = Export.objects.filter(status=JobStatus.SUCCEEDED, expired_at__isnull=True).exclude(file_name="")
    doomed: dict[int, tuple[Export, str]] = {}
    if conf.EXPORT_MAX_AGE_HOURS > 0:
        cutoff = timezone.now() - timedelta(hours=conf.EXPORT_MAX_AGE_HOURS)
        for export in available.filter(finished_at__lt=cutoff):
            doomed[export.pk] = (export, "older than the maximum age")
    owners = [row["owner_id"] for row in selectors.export_latest_finish_per_owner()]
    keep_users = set(owners[: max(0, conf.EXPORT_KEEP_USERS)])
    for owner_id in owners:
        files = list(available.filter(owner_id=owner_id).order_by("-finished_at", "-pk"))
        if owner_id not in keep_users:
            for export in files:
                doomed.setdefault(export.pk, (export, "files of more recent users are kept"))
            continue
        for export in files[max(0, conf.EXPORT_KEEP_PER_USER):]:
            doomed.setdefault(export.pk, (export, "only the latest files are kept"))
    for export, reason in doomed.values():
        export_expire(export=export, reason=reason)
    return len(doomed)
