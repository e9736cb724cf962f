"""The body of a fetch job: list → download → choose → store → parse → load → finish.

Runs inside `core.services.job_execute`; checks for cancellation between
steps (and once more inside the loading transaction), so a cancelled run
leaves the day's previous records untouched. A failed run keeps its error
text (core) and the raw files it got (here).
"""

from __future__ import annotations

import gc
import hashlib
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from core import services as core_services
from etl import conf
from etl.loading import records_replace
from etl.models import AuditLog, FetchedFile, FetchJob
from etl.parsing import (
    FILE_TYPES, PARSER_VERSION, PAYMENTS, SALES, combine, count_data_rows, effective_config, filetype_of,
    parse_payments, parse_sales,
)
from etl.sources import FileTooLarge, SourceError, TransientSourceError, source_for


class PipelineError(Exception):
    """The day cannot be processed as it is (no sales file, nothing usable)."""


@dataclass
class Candidate:
    name: str
    filetype: str
    size: int | None = None
    modified: str | None = None
    path: Path | None = None
    sha256: str = ""
    rows: int | None = None
    problem: str = ""
    stored: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "size": self.size, "modified": self.modified, "rows": self.rows,
            "sha256": self.sha256, "problem": self.problem,
        }


def remote_file_choose(candidates: list[Candidate]) -> tuple[Candidate | None, str]:
    """The version with the most data rows; ties go to the larger file, then the newer, then the later name."""
    usable = [c for c in candidates if not c.problem and c.rows]
    if not candidates:
        return None, "no file of this type was listed"
    if not usable:
        if all(c.problem for c in candidates):
            return None, "no candidate could be used: " + "; ".join(f"{c.name}: {c.problem}" for c in candidates)
        return None, "every candidate is empty (no data rows)"
    ranked = sorted(usable, key=lambda c: (c.rows, c.size or 0, c.modified or "", c.name), reverse=True)
    best = ranked[0]
    reason = f"most data rows ({best.rows}) of {len(candidates)} candidate(s)"
    tied = [c for c in ranked[1:] if c.rows == best.rows]
    if tied:
        reason += f"; tied on rows with {', '.join(c.name for c in tied)}, chosen as larger/newer/later name"
    skipped = [c for c in candidates if c.problem]
    if skipped:
        reason += f"; {len(skipped)} unusable"
    return best, reason


def _store_file(job: FetchJob, candidate: Candidate, *, chosen: bool) -> FetchedFile:
    raw = candidate.path.read_bytes()
    record = FetchedFile(
        job=job, branch_id=job.branch_id, attempt=job.attempt_count, filename=candidate.name,
        filetype=candidate.filetype, chosen=chosen, row_count=candidate.rows or 0, size=len(raw),
        sha256=candidate.sha256,
    )
    day = job.work_date.strftime("%Y%m%d")
    record.file.save(f"{job.branch.code}/{job.pos}/{day}/a{job.attempt_count}-{candidate.name}", ContentFile(raw), save=False)
    record.full_clean()
    record.save()
    candidate.stored = True
    return record


def _remove_older_files(job: FetchJob) -> None:
    old = list(FetchedFile.objects.filter(job=job).exclude(attempt=job.attempt_count))
    names = [f.file.name for f in old]
    FetchedFile.objects.filter(pk__in=[f.pk for f in old]).delete()

    def unlink() -> None:
        from django.core.files.storage import default_storage

        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                pass

    transaction.on_commit(unlink)


def fetch_job_auto_retry_schedule(job: FetchJob):
    """Queue a delayed re-run after a transient failure, with exponential backoff; None when exhausted."""
    if job.attempt_count > conf.JOB_AUTO_RETRIES:
        return None
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import Schedule
    from django_q.tasks import schedule

    retry_at = timezone.now() + timedelta(seconds=conf.JOB_RETRY_BACKOFF * 2 ** (job.attempt_count - 1))
    schedule("etl.tasks.fetch_job_auto_retry", job.pk, job.attempt_count, name=f"etl: auto retry {job.pk}/{job.attempt_count}",
             schedule_type=Schedule.ONCE, next_run=retry_at, repeats=1)
    return retry_at


@contextmanager
def gc_paused():
    """Pause the cyclic GC while hundreds of thousands of row tuples are built and loaded.

    The rows hold no reference cycles, so nothing is leaked; without the pause
    the collector repeatedly walks every live row (measured in bench/etl_load.py).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _set(job: FetchJob, **fields) -> None:
    FetchJob.objects.filter(pk=job.pk).update(**fields)
    for key, value in fields.items():
        setattr(job, key, value)


def _event(job: FetchJob, kind: str, **data) -> None:
    """An ordered job event (core `JobEvent`), streamed live to the job's page; tagged with the attempt."""
    core_services.job_event_add(job=job, kind=kind, data={"attempt": job.attempt_count, **data})


def _step(job: FetchJob, step: str, fraction: float, message: str) -> None:
    core_services.job_progress(job=job, fraction=fraction, message=message)
    _event(job, "step", step=step, message=message)


def fetch_job_execute(job: FetchJob) -> None:
    job = FetchJob.objects.select_related("branch", "branch__source").get(pk=job.pk)
    _set(job, attempt_count=job.attempt_count + 1, processor_version=PARSER_VERSION,
         file_list=[], chosen_files={}, counts={}, rejected_examples=[])
    branch = job.branch
    cfg = effective_config(is_new_branch=branch.is_new_branch, overrides=branch.parser_config)
    counts = {"listed": 0, "listing_rejected": 0, "downloaded": 0, "download_problems": 0, "bytes": 0,
              "parsed": 0, "payments_parsed": 0, "rejected": 0, "records_written": 0, "unpaid_lines": 0,
              "http_retries": 0}
    candidates: list[Candidate] = []
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
    workdir = tempfile.TemporaryDirectory(prefix="etl-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    source = None
    try:
        # 1. list
        _step(job, "list", 0.02, "Listing remote files")
        source = source_for(branch.source)
        listing = source.list_files(branch=branch.code, pos=job.pos, work_date=job.work_date)
        counts["listed"] = len(listing.entries)
        counts["listing_rejected"] = len(listing.rejected)
        file_list = [dict(e.as_dict(), filetype=filetype_of(e.name)) for e in listing.entries]
        file_list += [dict(r, rejected=True) for r in listing.rejected]
        _set(job, file_list=file_list)
        _event(job, "listed", files=len(listing.entries), names=[e.name for e in listing.entries][:200],
               rejected=listing.rejected)
        core_services.job_raise_if_cancelled(job=job)

        # 2. download + checksum + row count
        wanted = [e for e in listing.entries if filetype_of(e.name)]
        _step(job, "download", 0.05, f"Downloading {len(wanted)} file(s)")
        for index, entry in enumerate(wanted, start=1):
            candidate = Candidate(name=entry.name, filetype=filetype_of(entry.name), size=entry.size, modified=entry.modified)
            candidates.append(candidate)
            if entry.size is not None and entry.size > conf.MAX_FILE_BYTES:
                candidate.problem = f"listed as {entry.size} bytes; the cap is {conf.MAX_FILE_BYTES}"
                counts["download_problems"] += 1
                _event(job, "download_problem", name=entry.name, filetype=candidate.filetype, problem=candidate.problem)
                continue
            path = Path(workdir.name) / f"{index:03d}-{entry.name}"
            try:
                with path.open("wb") as out:
                    size = source.download(entry=entry, out=out, max_bytes=conf.MAX_FILE_BYTES)
            except FileTooLarge as exc:
                candidate.problem = str(exc)
                counts["download_problems"] += 1
                path.unlink(missing_ok=True)
                _event(job, "download_problem", name=entry.name, filetype=candidate.filetype, problem=candidate.problem)
                continue
            raw = path.read_bytes()
            candidate.path, candidate.size = path, size
            candidate.sha256 = hashlib.sha256(raw).hexdigest()
            candidate.rows = count_data_rows(raw, cfg, candidate.filetype)
            counts["downloaded"] += 1
            counts["bytes"] += size
            _event(job, "downloaded", name=entry.name, filetype=candidate.filetype, size=size, rows=candidate.rows,
                   sha256=candidate.sha256, index=index, total=len(wanted))
            core_services.job_progress(job=job, fraction=0.05 + 0.45 * index / len(wanted),
                                       message=f"Downloaded {index} of {len(wanted)}: {entry.name}")
            core_services.job_raise_if_cancelled(job=job)

        # 3. choose per type
        chosen: dict[str, Candidate] = {}
        chosen_files: dict[str, dict] = {}
        for ftype in FILE_TYPES:
            of_type = [c for c in candidates if c.filetype == ftype]
            best, reason = remote_file_choose(of_type)
            chosen_files[ftype] = {"chosen": best.name if best else None, "reason": reason,
                                   "candidates": [c.as_dict() for c in of_type]}
            if best:
                chosen[ftype] = best
        _set(job, chosen_files=chosen_files)
        _event(job, "chosen", chosen={t: v["chosen"] for t, v in chosen_files.items()},
               reasons={t: v["reason"] for t, v in chosen_files.items()})
        if SALES not in chosen:
            raise PipelineError(f"No usable {SALES} file: {chosen_files[SALES]['reason']}")
        core_services.job_raise_if_cancelled(job=job)

        # 4. store the chosen raw files
        _step(job, "store", 0.55, "Storing the chosen files")
        for candidate in chosen.values():
            _store_file(job, candidate, chosen=True)
        core_services.job_raise_if_cancelled(job=job)

        # 5. parse + combine
        _step(job, "parse", 0.65, "Parsing")
        keep = conf.REJECT_EXAMPLES
        with gc_paused():
            sales = parse_sales(chosen[SALES].path.read_bytes(), cfg, keep_examples=keep)
            payments = None
            if PAYMENTS in chosen:
                payments = parse_payments(chosen[PAYMENTS].path.read_bytes(), cfg, keep_examples=keep)
            rows = combine(sales, payments)
        examples = [e.as_dict() for e in sales.examples]
        if payments:
            examples += [e.as_dict() for e in payments.examples][: max(0, keep - len(examples))]
        counts["parsed"] = sales.count
        counts["payments_parsed"] = payments.count if payments else 0
        counts["rejected"] = sales.rejected + (payments.rejected if payments else 0)
        counts["unpaid_lines"] = sum(1 for r in rows if not r[-1])
        _set(job, counts=dict(counts, http_retries=source.retries_used), rejected_examples=examples)
        _event(job, "parsed", parsed=counts["parsed"], payments_parsed=counts["payments_parsed"],
               rejected=counts["rejected"], unpaid_lines=counts["unpaid_lines"], records=len(rows))
        core_services.job_raise_if_cancelled(job=job)

        # 6. replace the day's records (last cancellation check inside the transaction)
        _step(job, "load", 0.8, f"Loading {len(rows)} records")
        with gc_paused(), transaction.atomic():
            before, written = records_replace(job=job, rows=rows,
                                              before_write=lambda: core_services.job_raise_if_cancelled(job=job))
            _remove_older_files(job)
            counts["records_written"] = written
            counts["http_retries"] = source.retries_used
            if job.force:
                AuditLog.objects.create(job=job, branch=branch, actor=None, action=AuditLog.Action.FINISHED,
                                        detail={"force": True, "records_before": before, "records_after": written})
            # 7. finish
            message = f"{written} records from {counts['listed']} listed file(s), {counts['rejected']} rejected row(s)"
            # Same transaction as the status: the page never sees "succeeded" without its result.
            _event(job, "result", status="succeeded", message=message, records_written=written,
                   records_before=before, counts=counts)
            core_services.job_succeed(job=job, message=message, counts=counts, records_before=before,
                                      records_written=written)
    except core_services.JobCancelled:
        _event(job, "result", status="cancelled", message="Cancelled; the previous records are unchanged")
        raise
    except Exception as exc:
        counts["http_retries"] = getattr(source, "retries_used", 0)
        _set(job, counts=counts)
        for candidate in candidates:
            if candidate.path is not None and not candidate.stored and candidate.path.exists():
                try:
                    _store_file(job, candidate, chosen=False)
                except Exception:  # keeping evidence must not hide the real error
                    pass
        if isinstance(exc, (SourceError, PipelineError)):
            # Expected failures (host down, nothing usable): a clear message, no traceback noise.
            message = str(exc)
            if isinstance(exc, TransientSourceError):
                retry_at = fetch_job_auto_retry_schedule(job)
                if retry_at:
                    counts["auto_retry_at"] = retry_at.isoformat()
                    message += f" — retrying automatically at {retry_at:%H:%M:%S}"
            _event(job, "result", status="failed", message=message[:500], error=f"{type(exc).__name__}: {exc}",
                   counts=counts)
            core_services.job_fail(job=job, error=f"{type(exc).__name__}: {exc}", message=message[:500], counts=counts)
            return
        _event(job, "result", status="failed", message="Failed", error=f"{type(exc).__name__}: {exc}", counts=counts)
        raise
    finally:
        if source is not None:
            source.close()
        workdir.cleanup()
