"""Reads of the ETL app: job and record lists, the missing-data calendar, the dashboard."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from core.models import JobEvent, JobStatus
from core.permissions import get_for_viewer, visible_to
from core.storage import stored_open_range, stored_stat
from etl.models import POS_NUMBERS, AuditLog, Branch, FetchedFile, FetchJob, Record, RecordExport


def branch_list(*, active_only: bool = False) -> QuerySet[Branch]:
    qs = Branch.objects.select_related("source").order_by("code")
    return qs.filter(is_active=True) if active_only else qs


def fetch_job_visible_to(*, user) -> QuerySet[FetchJob]:
    """Who may see fetch jobs (the pages, the API and the websockets): every signed-in user, since
    ETL data is the team's (only the owner or staff may retry or cancel: `services`)."""
    if not user or not user.is_authenticated:
        return FetchJob.objects.none()
    return FetchJob.objects.all()


def fetch_job_get_for_viewer(*, user, pk) -> FetchJob | None:
    return get_for_viewer(fetch_job_visible_to(user=user).select_related("branch", "owner"), pk)


def fetch_job_list(*, user, filters: dict) -> QuerySet[FetchJob]:
    """Filters: branch (Branch), pos, status, start, end (work dates)."""
    qs = fetch_job_visible_to(user=user).select_related("branch", "owner").order_by("-work_date", "branch__code", "pos")
    if filters.get("branch"):
        qs = qs.filter(branch=filters["branch"])
    if filters.get("pos"):
        qs = qs.filter(pos=filters["pos"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("start"):
        qs = qs.filter(work_date__gte=filters["start"])
    if filters.get("end"):
        qs = qs.filter(work_date__lte=filters["end"])
    return qs


def fetch_job_rows(*, user, ids: list[int]) -> list[dict]:
    """The live columns of some jobs (for the jobs table and calendar over the websocket)."""
    rows = fetch_job_visible_to(user=user).filter(pk__in=ids).values(
        "pk", "status", "progress", "message", "branch_id", "pos", "work_date", "records_written", "attempt_count"
    )
    return [
        {**row, "work_date": row["work_date"].isoformat(), "id": row.pop("pk")}
        for row in rows
    ]


def describe_event(kind: str, data: dict) -> str:
    """One line for a fetch job event (the page's JavaScript formats live events the same way)."""
    if kind == "step":
        return data.get("message", "")
    if kind == "listed":
        rejected = len(data.get("rejected") or [])
        return f"Listed {data.get('files', 0)} file(s)" + (f", {rejected} entry(ies) rejected" if rejected else "")
    if kind == "downloaded":
        return (f"Downloaded {data.get('name')} ({data.get('filetype')}, {data.get('size')} bytes, "
                f"{data.get('rows')} data rows)")
    if kind == "download_problem":
        return f"Skipped {data.get('name')}: {data.get('problem')}"
    if kind == "chosen":
        chosen = data.get("chosen") or {}
        return "Chosen: " + ", ".join(f"{t} {n or '— none'}" for t, n in chosen.items())
    if kind == "parsed":
        return (f"Parsed {data.get('parsed')} sales line(s), {data.get('payments_parsed')} payment(s); "
                f"{data.get('rejected')} rejected, {data.get('unpaid_lines')} unpaid")
    if kind == "result":
        return f"Result: {data.get('status')} — {data.get('message', '')}"
    return kind


def fetch_job_events(*, job: FetchJob, limit: int = 200) -> list[dict]:
    """The job's latest events, oldest first, for the detail page (new ones arrive over the websocket)."""
    rows = list(JobEvent.objects.filter(job_kind=job.kind, job_id=job.pk).order_by("-seq")[:limit])
    rows.reverse()
    return [{"seq": e.seq, "kind": e.kind, "data": e.data, "attempt": e.data.get("attempt"),
             "text": describe_event(e.kind, e.data)} for e in rows]


def fetch_job_files(*, job: FetchJob) -> QuerySet[FetchedFile]:
    return job.files.order_by("-attempt", "-chosen", "filetype", "filename")


def fetched_file_visible_to(*, user) -> QuerySet[FetchedFile]:
    """Who may see a stored POS file (the Files page, its preview and download, the API): whoever may see its
    fetch job."""
    return FetchedFile.objects.filter(job__in=fetch_job_visible_to(user=user))


def fetched_file_get_for_viewer(*, user, pk) -> FetchedFile | None:
    return get_for_viewer(fetched_file_visible_to(user=user).select_related("branch", "job"), pk)


def fetched_file_list(*, user, filters: dict) -> QuerySet[FetchedFile]:
    """Filters: branch (Branch), job (id), filetype; newest first."""
    qs = fetched_file_visible_to(user=user).select_related("branch", "job").order_by("-uploaded_at", "-id")
    if filters.get("job"):
        qs = qs.filter(job_id=filters["job"])
    if filters.get("branch"):
        qs = qs.filter(branch=filters["branch"])
    if filters.get("filetype"):
        qs = qs.filter(filetype=filters["filetype"])
    return qs


PREVIEW_ROWS = 20
PREVIEW_BYTES = 64 * 1024
PREVIEW_COLUMNS = 40
PREVIEW_CELL_CHARS = 120


def fetched_file_preview(*, stored: FetchedFile, rows: int = PREVIEW_ROWS) -> dict:
    """The first lines of a stored file split into fields with its branch's parser config: {"header": [...],
    "rows": [[...]], "truncated": bool, "problem": str}. Reads at most PREVIEW_BYTES, whatever the file's size,
    and clips wide rows and long fields, so a hostile file cannot fill the page."""
    import csv

    from etl.parsing import effective_config

    cfg = effective_config(is_new_branch=stored.branch.is_new_branch, overrides=stored.branch.parser_config)
    # Only the first bytes are read from the store (a ranged read on an S3-compatible one).
    try:
        size = stored_stat(stored.file.name).size
        raw = b"".join(stored_open_range(stored.file.name, 0, min(size, PREVIEW_BYTES + 1))) if size else b""
    except (FileNotFoundError, OSError, ValueError):
        return {"header": [], "rows": [], "truncated": False, "problem": "The file is no longer stored."}
    clipped = len(raw) > PREVIEW_BYTES
    try:
        text = raw[:PREVIEW_BYTES].decode(cfg["encoding"], errors="replace")
    except LookupError:
        text = raw[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if clipped and lines:
        lines.pop()  # the last line read may be cut in the middle
    lines = [line for line in lines if line.strip()]
    skip = min(int(cfg.get("skip_header_rows") or 0), len(lines))
    delimiter = cfg.get("delimiter") or ","

    def fields(line: str) -> list[str]:
        try:
            values = next(csv.reader([line], delimiter=delimiter))
        except (csv.Error, StopIteration):
            values = line.split(delimiter)
        return [v if len(v) <= PREVIEW_CELL_CHARS else v[:PREVIEW_CELL_CHARS] + "…" for v in values[:PREVIEW_COLUMNS]]

    header = fields(lines[skip - 1]) if skip else []
    body = [fields(line) for line in lines[skip:skip + rows]]
    width = max([len(header)] + [len(r) for r in body]) if (header or body) else 0
    if header and len(header) < width:
        header += [""] * (width - len(header))
    return {"header": header, "rows": body, "width": width,
            "truncated": clipped or len(lines) > skip + rows, "problem": "" if body else "The file has no data rows."}


def audit_for_job(*, job: FetchJob) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(job=job).select_related("actor").order_by("-created_at", "-id")


def audit_list(*, branch: Branch | None = None, limit: int = 100) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.select_related("actor", "branch", "job")
    if branch is not None:
        qs = qs.filter(branch=branch)
    return qs[:limit]


def record_list(*, filters: dict) -> QuerySet[Record]:
    """Filters: start, end, year, branch (Branch), pos, item (exact item code)."""
    qs = Record.objects.select_related("branch").order_by("work_date", "branch_id", "pos", "line_no")
    if filters.get("year"):
        year = int(filters["year"])
        qs = qs.filter(work_date__gte=date(year, 1, 1), work_date__lte=date(year, 12, 31))
    if filters.get("start"):
        qs = qs.filter(work_date__gte=filters["start"])
    if filters.get("end"):
        qs = qs.filter(work_date__lte=filters["end"])
    if filters.get("branch"):
        branch = filters["branch"]
        qs = qs.filter(branch_id=branch.pk if isinstance(branch, Branch) else branch)
    if filters.get("pos"):
        qs = qs.filter(pos=filters["pos"])
    if filters.get("item"):
        qs = qs.filter(item_code=filters["item"])
    return qs


def record_exports_for(*, user) -> QuerySet[RecordExport]:
    """Who may see a record export (its owner and staff), newest first."""
    return visible_to(RecordExport.objects.order_by("-created_at"), user)


def record_export_get_for_viewer(*, user, pk) -> RecordExport | None:
    return get_for_viewer(record_exports_for(user=user), pk)


# --- missing-data calendar ----------------------------------------------------------

DONE, MISSING, FAILED, RUNNING, NOT_EXPECTED = "done", "missing", "failed", "running", "not_expected"
CELL_STATES = (DONE, MISSING, FAILED, RUNNING, NOT_EXPECTED)
_FROM_JOB = {
    JobStatus.SUCCEEDED: DONE,
    JobStatus.FAILED: FAILED,
    JobStatus.QUEUED: RUNNING,
    JobStatus.RUNNING: RUNNING,
    JobStatus.CANCELLED: MISSING,
}


def missing_calendar(*, start: date, end: date, branches: list[Branch] | None = None) -> dict:
    """State of every branch × POS × day in [start, end]: done, missing, failed, running, not_expected.

    One query reads the jobs of the range (plus one for the branches); the
    grid is built in memory.
    """
    branches = list(branches) if branches is not None else list(branch_list(active_only=True))
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    today = timezone.localdate()
    jobs = FetchJob.objects.filter(work_date__gte=start, work_date__lte=end)
    if branches is not None:
        jobs = jobs.filter(branch_id__in=[b.pk for b in branches])
    found: dict[tuple[int, int, date], tuple[str, int]] = {
        (branch_id, pos, day): (status, pk)
        for pk, branch_id, pos, day, status in jobs.values_list("pk", "branch_id", "pos", "work_date", "status")
    }
    rows = []
    totals = dict.fromkeys(CELL_STATES, 0)
    for branch in branches:
        closed = branch.closed_days()
        expected = [branch.expects_data(day, today=today, closed=closed) for day in days]
        for pos in POS_NUMBERS:
            cells = []
            for day, is_expected in zip(days, expected):
                hit = found.get((branch.pk, pos, day))
                if hit is not None:
                    state, job_id = _FROM_JOB[hit[0]], hit[1]
                    if state == MISSING and not is_expected:
                        state = NOT_EXPECTED
                else:
                    state, job_id = (MISSING if is_expected else NOT_EXPECTED), None
                totals[state] += 1
                cells.append({"date": day, "state": state, "job_id": job_id})
            rows.append({"branch": branch, "pos": pos, "cells": cells})
    return {"start": start, "end": end, "days": days, "rows": rows, "totals": totals}


def missing_cells(*, calendar: dict, states: tuple[str, ...] = (MISSING, FAILED)) -> list[tuple[int, int, date]]:
    return [
        (row["branch"].pk, row["pos"], cell["date"])
        for row in calendar["rows"]
        for cell in row["cells"]
        if cell["state"] in states
    ]


# --- dashboard -------------------------------------------------------------------


def dashboard(*, failures: int = 10) -> dict:
    counts = dict.fromkeys(JobStatus.values, 0)
    for row in FetchJob.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    recent_failures = list(
        FetchJob.objects.filter(status=JobStatus.FAILED).select_related("branch").order_by("-finished_at", "-id")[:failures]
    )
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "recent_failures": recent_failures,
        "branches": Branch.objects.count(),
        # Bounded by the date index: an exact count of the whole table grows with the years.
        "records_30_days": Record.objects.filter(work_date__gte=timezone.localdate() - timedelta(days=30)).count(),
    }
