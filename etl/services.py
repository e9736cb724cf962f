"""Every write of the ETL app: fetch requests, retries, cancels, missing runs, branches, exports.

Access rules (ETL data is the team's, not one person's):
- any signed-in user may see jobs, files and records and queue fetches of
  days that are missing or failed;
- forcing a refetch of a finished day and cancelling a job are for the job's
  owner or staff;
- branches and sources are changed by staff only.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import services as core_services
from core.models import JobStatus
from core.permissions import can_manage
from etl import conf
from etl.models import POS_NUMBERS, AuditLog, Branch, FetchJob, FileSource, Record, RecordExport
from etl.parsing import FILE_TYPES, PAYMENTS, SALES, effective_config, parse_payments, parse_sales, validate_config

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def audit_add(*, action: str, actor=None, job: FetchJob | None = None, branch: Branch | None = None,
              detail: dict | None = None) -> AuditLog:
    entry = AuditLog(action=action, actor=actor if actor and actor.is_authenticated else None, job=job,
                     branch=branch or (job.branch if job else None), detail=detail or {})
    entry.full_clean()
    entry.save()
    return entry


def _requeue(*, job: FetchJob, force: bool) -> None:
    fields = dict(status=JobStatus.QUEUED, progress=0.0, message="Queued", error="", started_at=None,
                  finished_at=None, heartbeat_at=None, cancel_requested=False, cancelled_by=None, force=force,
                  task_id="")
    FetchJob.objects.filter(pk=job.pk).update(**fields)
    for key, value in fields.items():
        setattr(job, key, value)
    core_services.job_enqueue(job=job)


# --- rules of the request parameters (the pages and the API both call these) --------


def date_range_validate(*, start: date | None, end: date | None, max_days: int | None = None,
                        start_field: str = "start", end_field: str = "end") -> None:
    """A date range given by a user: the end is not before the start, and not longer than `max_days`."""
    if start and end:
        if end < start:
            raise ValidationError({end_field: "The end date is before the start date."})
        if max_days and (end - start).days + 1 > max_days:
            raise ValidationError({end_field: f"The range is limited to {max_days} days."})


POS_RULE = f"POS must be {' or '.join(map(str, POS_NUMBERS))}"


def _pos_error(pos) -> str | None:
    return None if pos in POS_NUMBERS else f"{POS_RULE}."


def missing_cells_validate(*, cells: list[tuple[int, int, date]]) -> dict[int, Branch]:
    """Check (branch id, pos, day) cells before they are shown for confirmation or queued; returns the branches."""
    if not cells:
        raise ValidationError({"cells": "Select at least one day to fetch."})
    if len(cells) > conf.MAX_JOBS_PER_REQUEST:
        raise ValidationError({"cells": f"At most {conf.MAX_JOBS_PER_REQUEST} days per request."})
    for _branch_id, pos, _day in cells:
        if _pos_error(pos):
            raise ValidationError({"cells": _pos_error(pos)})
    branches = {b.pk: b for b in Branch.objects.filter(pk__in={c[0] for c in cells})}
    unknown = {c[0] for c in cells} - set(branches)
    if unknown:
        raise ValidationError({"cells": f"Unknown branch id(s): {', '.join(map(str, sorted(unknown)))}."})
    return branches


def missing_cells_by_code(*, branches_missing: dict[str, dict[str, list[date]]]) -> list[tuple[int, int, date]]:
    """{"B01": {"1": [day, …]}} → (branch id, pos, day) cells; unknown codes and terminals are refused."""
    codes = set(branches_missing)
    if any("\x00" in code for code in codes):
        raise ValidationError({"branches_missing": "Branch codes cannot contain NUL characters."})
    branches = {b.code: b for b in Branch.objects.filter(code__in=codes)}
    if codes - set(branches):
        raise ValidationError(
            {"branches_missing": f"Unknown branch code(s): {', '.join(sorted(codes - set(branches)))}."})
    cells = []
    for code, by_pos in branches_missing.items():
        for pos, days in by_pos.items():
            number = next((n for n in POS_NUMBERS if str(n) == pos), None)
            if number is None:
                raise ValidationError({"branches_missing": f"{POS_RULE}, not {pos!r}."})
            cells += [(branches[code].pk, number, day) for day in days]
    return cells


def _check_day(*, branch: Branch, pos: int, work_date: date) -> None:
    errors = {}
    if not branch.is_active:
        errors["branch"] = f"Branch {branch.code} is inactive."
    if _pos_error(pos):
        errors["pos"] = _pos_error(pos)
    if work_date > timezone.localdate():
        errors["date"] = "The date is in the future; there is nothing to fetch yet."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def fetch_job_request(*, user, branch: Branch, pos: int, work_date: date, force: bool = False,
                  action: str = AuditLog.Action.FETCH) -> tuple[FetchJob, bool]:
    """Queue a fetch of one day unless it is done or under way; returns (job, queued now).

    Idempotent: a day that succeeded is left alone unless `force`; a queued
    or running day is never queued twice. Failed or cancelled days run again.
    """
    _check_day(branch=branch, pos=pos, work_date=work_date)
    job = FetchJob.objects.select_for_update().filter(branch=branch, pos=pos, work_date=work_date).first()
    if job is None:
        job = FetchJob(owner=user, branch=branch, pos=pos, work_date=work_date, force=force, message="Queued")
        job.full_clean(validate_constraints=False)
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:  # someone queued the same day a moment ago
            return FetchJob.objects.get(branch=branch, pos=pos, work_date=work_date), False
        audit_add(action=action, actor=user, job=job, detail={"force": force})
        core_services.job_enqueue(job=job)
        return job, True
    if job.status in ACTIVE:
        if force:
            raise ValidationError({"force": f"{job.job_title()} is already {job.status}; wait for it or cancel it."})
        return job, False
    if job.status == JobStatus.SUCCEEDED and not force:
        return job, False
    if force and job.status == JobStatus.SUCCEEDED and not can_manage(user, job):
        raise PermissionDenied("Only the job's owner or an administrator can force a refetch.")
    before = Record.objects.filter(branch=branch, pos=pos, work_date=work_date).count()
    audit_add(action=AuditLog.Action.FORCE if force else action, actor=user, job=job,
              detail={"previous_status": job.status, "records_before": before, "force": force})
    _requeue(job=job, force=force)
    return job, True


@transaction.atomic
def fetch_job_request_range(*, user, branch: Branch, pos_list: list[int], start: date, end: date, force: bool = False) -> list[tuple[FetchJob, bool]]:
    """Queue every day of start..end for the given terminals (all or nothing)."""
    date_range_validate(start=start, end=end, start_field="date", end_field="end_date")
    if end > timezone.localdate() and end != start:
        raise ValidationError({"end_date": "The range ends in the future; there is nothing to fetch yet."})
    days = (end - start).days + 1
    if days * len(pos_list) > conf.MAX_JOBS_PER_REQUEST:
        raise ValidationError({"end_date": f"At most {conf.MAX_JOBS_PER_REQUEST} jobs per request; shorten the range."})
    results = []
    for offset in range(days):
        for pos in pos_list:
            results.append(fetch_job_request(user=user, branch=branch, pos=pos, work_date=start + timedelta(days=offset),
                                         force=force))
    return results


@transaction.atomic
def fetch_job_retry(*, user, job: FetchJob) -> FetchJob:
    job = FetchJob.objects.select_for_update().select_related("branch").get(pk=job.pk)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise ValidationError({"status": f"Only failed or cancelled jobs can be retried; this one is {job.status}."})
    audit_add(action=AuditLog.Action.RETRY, actor=user, job=job,
              detail={"previous_status": job.status, "previous_error": job.error[:500]})
    _requeue(job=job, force=job.force)
    return job


@transaction.atomic
def fetch_job_auto_retry(*, pk: int, attempt: int) -> bool:
    """The delayed re-run after a transient failure; a no-op if anyone touched the job since."""
    job = FetchJob.objects.select_for_update().select_related("branch").filter(pk=pk).first()
    if job is None or job.status != JobStatus.FAILED or job.attempt_count != attempt:
        return False
    audit_add(action=AuditLog.Action.RETRY, actor=None, job=job,
              detail={"automatic": True, "after_attempt": attempt, "previous_error": job.error[:500]})
    _requeue(job=job, force=job.force)
    return True


def fetch_job_cancel(*, user, job: FetchJob) -> FetchJob:
    job = FetchJob.objects.select_related("branch").get(pk=job.pk)
    if not can_manage(user, job):
        raise PermissionDenied("Only the job's owner or an administrator can cancel it.")
    if job.status not in ACTIVE:
        raise ValidationError({"status": f"The job is already {job.status}."})
    with transaction.atomic():
        job = core_services.job_cancel(job=job, by=user)
        audit_add(action=AuditLog.Action.CANCEL, actor=user, job=job, detail={"status_after": job.status})
    return job


def fetch_job_request_missing(*, user, cells: list[tuple[int, int, date]]) -> list[FetchJob]:
    """Queue the given (branch id, pos, day) cells; done or running cells are skipped (idempotent)."""
    branches = missing_cells_validate(cells=cells)
    queued = []
    for branch_id, pos, day in sorted(set(cells)):
        job, now = fetch_job_request(user=user, branch=branches[branch_id], pos=pos, work_date=day,
                                 action=AuditLog.Action.MISSING_RUN)
        if now:
            queued.append(job)
    return queued


def scheduled_fetch_owner():
    User = get_user_model()
    if conf.SCHEDULE_OWNER:
        return User.objects.filter(username=conf.SCHEDULE_OWNER, is_active=True).first()
    return User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()


def fetch_job_request_daily(*, work_date: date | None = None) -> int:
    """Queue the previous day for every active branch and POS (the django-q2 schedule)."""
    owner = scheduled_fetch_owner()
    if owner is None:
        return 0
    day = work_date or timezone.localdate() - timedelta(days=1)
    count = 0
    for branch in Branch.objects.filter(is_active=True):
        if not branch.expects_data(day):
            continue
        for pos in POS_NUMBERS:
            _job, now = fetch_job_request(user=owner, branch=branch, pos=pos, work_date=day,
                                      action=AuditLog.Action.SCHEDULED)
            count += int(now)
    return count


# --- branches ---------------------------------------------------------------------

BRANCH_FIELDS = ("code", "name", "is_new_branch", "parser_config", "source", "is_active", "opened_on",
                 "closed_weekdays", "closed_dates")


def _validate_branch(branch: Branch) -> None:
    errors: dict[str, list[str]] = {}
    for path, message in validate_config(branch.parser_config, is_new_branch=branch.is_new_branch).items():
        errors.setdefault("parser_config", []).append(f"{path}: {message}")
    weekdays = branch.closed_weekdays
    if not isinstance(weekdays, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays):
        errors["closed_weekdays"] = ["Must be a list of weekday numbers, 0 = Monday … 6 = Sunday."]
    closed = branch.closed_dates
    if not isinstance(closed, list) or len(closed) > 1000:
        errors["closed_dates"] = ["Must be a list of dates (YYYY-MM-DD)."]
    else:
        for value in closed:
            try:
                date.fromisoformat(str(value))
            except ValueError:
                errors["closed_dates"] = [f"{str(value)[:20]!r} is not a date (YYYY-MM-DD)."]
                break
    if errors:
        raise ValidationError(errors)


def _require_staff(user) -> None:
    if not (user and user.is_authenticated and user.is_staff):
        raise PermissionDenied("Only administrators can change branches.")


@transaction.atomic
def branch_create(*, user, **data) -> Branch:
    _require_staff(user)
    branch = Branch(**{k: v for k, v in data.items() if k in BRANCH_FIELDS})
    branch.full_clean()
    _validate_branch(branch)
    branch.save()
    audit_add(action=AuditLog.Action.BRANCH_CREATE, actor=user, branch=branch,
              detail={"code": branch.code, "parser_config": branch.parser_config})
    return branch


def branch_upsert(*, user, **data) -> tuple[Branch, bool]:
    """Create the branch with this code, or update the one that has it; returns (branch, created)."""
    _require_staff(user)
    if isinstance(data.get("closed_dates"), list):
        data["closed_dates"] = [d.isoformat() if isinstance(d, date) else d for d in data["closed_dates"]]
    existing = Branch.objects.filter(code=data.get("code")).first()
    if existing:
        return branch_update(user=user, branch=existing, **data), False
    return branch_create(user=user, **data), True


@transaction.atomic
def branch_update(*, user, branch: Branch, **data) -> Branch:
    _require_staff(user)
    branch = Branch.objects.select_for_update().get(pk=branch.pk)
    changes = {}
    for key, value in data.items():
        if key not in BRANCH_FIELDS:
            continue
        old = getattr(branch, key)
        if old != value:
            changes[key] = {"from": _jsonable(old), "to": _jsonable(value)}
            setattr(branch, key, value)
    branch.full_clean()
    _validate_branch(branch)
    if changes:
        branch.save()
        audit_add(action=AuditLog.Action.BRANCH_UPDATE, actor=user, branch=branch, detail={"changes": changes})
    return branch


def _jsonable(value):
    if isinstance(value, (date, FileSource)):
        return str(value)
    return value


def branch_test_parse_sample(upload) -> bytes:
    """The bytes of an uploaded sample, read no further than one byte past the limit branch_test_parse checks."""
    return upload.read(conf.TEST_PARSE_MAX_BYTES + 1)


def branch_test_parse(*, is_new_branch: bool, parser_config: dict, filetype: str, raw: bytes) -> dict:
    """Parse a sample file with a (possibly unsaved) config: rows and rejected rows, no writes."""
    errors = validate_config(parser_config, is_new_branch=is_new_branch)
    if errors:
        raise ValidationError({"parser_config": [f"{k}: {v}" for k, v in errors.items()]})
    if filetype not in FILE_TYPES:
        raise ValidationError({"filetype": f"Choose {SALES} (sales) or {PAYMENTS} (payments)."})
    if len(raw) > conf.TEST_PARSE_MAX_BYTES:
        raise ValidationError({"file": f"The sample is larger than {conf.TEST_PARSE_MAX_BYTES} bytes."})
    cfg = effective_config(is_new_branch=is_new_branch, overrides=parser_config)
    if filetype == SALES:
        result = parse_sales(raw, cfg, keep_examples=50)
        fields = ("line", "tnsc", "sale_date", "sale_time", "item_code", "department", "quantity", "amount")
    else:
        result = parse_payments(raw, cfg, keep_examples=50)
        fields = ("line", "tnsc", "payment_method", "amount")
    rows = [dict(zip(fields, (str(v) if v is not None else "" for v in row))) for row in result.rows[:100]]
    return {
        "filetype": filetype, "config": cfg, "fields": fields, "data_lines": result.data_lines,
        "parsed": len(result.rows), "rejected": result.rejected, "rows": rows,
        "rejected_examples": [e.as_dict() for e in result.examples],
    }


# --- record exports -------------------------------------------------------------

EXPORT_COLUMNS = ("branch", "pos", "work_date", "line_no", "tnsc", "sale_date", "sale_time", "item_code",
                  "department", "quantity", "amount", "payment_method")


@transaction.atomic
def record_export_create(*, user, filters: dict) -> RecordExport:
    """`filters` as a form or serializer validated them (a Branch, dates); stored as JSON for the job."""
    filters = {key: value.pk if isinstance(value, Branch) else value.isoformat() if hasattr(value, "isoformat") else value
               for key, value in filters.items() if value not in (None, "")}
    export = RecordExport(owner=user, filters=filters, message="Queued")
    export.full_clean()
    export.save()
    audit_add(action=AuditLog.Action.EXPORT, actor=user, detail={"export_id": export.pk, "filters": filters})
    core_services.job_enqueue(job=export)
    return export


def record_export_execute(export: RecordExport) -> None:
    from etl.selectors import record_list

    records = record_list(filters=export.filters).select_related(None).values_list(
        "branch__code", "pos", "work_date", "line_no", "tnsc", "sale_date", "sale_time", "item_code", "department",
        "quantity", "amount", "payment_method",
    )
    total = records.count()
    with tempfile.TemporaryFile(mode="w+b", dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(EXPORT_COLUMNS)
        for index, row in enumerate(records.iterator(chunk_size=5000), start=1):
            writer.writerow(row)
            if index % 20000 == 0:
                core_services.job_raise_if_cancelled(job=export)
                core_services.job_progress(job=export, fraction=0.9 * index / max(total, 1),
                                           message=f"{index} of {total} rows")
        text.flush()
        spool.seek(0)
        year = export.filters.get("year")
        name = f"records_{year}.csv" if year else f"records_export_{export.pk}.csv"
        export.file.save(f"{export.owner_id}/{name}", File(spool), save=False)
        text.detach()
    core_services.job_succeed(job=export, message=f"{total} records exported", file=export.file.name, row_count=total)

