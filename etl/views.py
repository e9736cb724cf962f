"""HTMX pages of the ETL app. Thin: forms validate, services and selectors do the work."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.permissions import can_manage, found_or_404
from etl import selectors, services
from etl.downloads import file_response
from etl.consumers import FetchJobRowsStream, FetchJobStream
from etl.forms import (
    BranchForm, CellsForm, FetchForm, FileFilterForm, JobFilterForm, MissingForm, RecordFilterForm, TestParseForm, YearExportForm,
)
from etl.models import POS_NUMBERS, Branch, FetchJob, RecordExport
from etl.parsing import effective_config

STOP_POLLING = 286


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


def _page(request, queryset, per_page: int = 50):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def index(request):
    return render(request, "etl/index.html", {"dash": selectors.dashboard()})


# --- jobs --------------------------------------------------------------------------


@login_required
def job_list(request):
    form = JobFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    page = _page(request, selectors.fetch_job_list(user=request.user, filters=filters))
    context = {"form": form, "page": page, "query": _query_without_page(request),
               "job_ids": ",".join(str(job.pk) for job in page), "ws_path": FetchJobRowsStream.path()}
    template = "etl/jobs.html#table" if request.htmx and not request.htmx.boosted else "etl/jobs.html"
    return render(request, template, context)


def _job_context(job: FetchJob, user, *, events: bool = True) -> dict:
    context = {
        "job": job,
        "files": selectors.fetch_job_files(job=job),
        "audit": selectors.audit_for_job(job=job),
        "can_manage": can_manage(user, job),
        "ws_path": FetchJobStream.path(job.pk),
    }
    if events:
        context["events"] = selectors.fetch_job_events(job=job)
        context["last_seq"] = context["events"][-1]["seq"] if context["events"] else 0
    return context


@login_required
def fetchjob_detail(request, pk: int):
    """The job page. Status, progress and events arrive over `/ws/etl/jobs/<pk>/` (etl/static/etl/job_detail.js);
    when the job ends the script fetches `?fragment=details` once (actions, candidates, files, rejects, audit)."""
    job = found_or_404(selectors.fetch_job_get_for_viewer(user=request.user, pk=pk))
    if request.GET.get("fragment") == "details":
        return render(request, "etl/job_detail.html#details", _job_context(job, request.user, events=False))
    return render(request, "etl/job_detail.html", _job_context(job, request.user))


@login_required
@require_POST
def job_action(request, pk: int, action: str):
    job = found_or_404(selectors.fetch_job_get_for_viewer(user=request.user, pk=pk))
    try:
        if action == "retry":
            services.fetch_job_retry(user=request.user, job=job)
            messages.success(request, "Retry queued.")
        elif action == "cancel":
            services.fetch_job_cancel(user=request.user, job=job)
            messages.success(request, "Cancel requested; the previous records stay as they were.")
        elif action == "force":
            services.fetch_job_request(user=request.user, branch=job.branch, pos=job.pos, work_date=job.work_date,
                                   force=True)
            messages.success(request, "Forced refetch queued.")
        else:
            return HttpResponse("Unknown action.", status=404)
    except PermissionDenied as exc:
        return HttpResponseForbidden(_error_text(exc))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect("etl:fetchjob_detail", pk=job.pk)


# --- stored files ------------------------------------------------------------------------


@login_required
def file_list(request):
    """The raw POS files kept by fetches, filtered by branch, job and type; HTMX gets the table fragment."""
    form = FileFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    page = _page(request, selectors.fetched_file_list(user=request.user, filters=filters))
    template = "etl/files.html#table" if request.htmx and not request.htmx.boosted else "etl/files.html"
    return render(request, template, {"form": form, "page": page, "query": _query_without_page(request)})


@login_required
def file_detail(request, pk: int):
    stored = found_or_404(selectors.fetched_file_get_for_viewer(user=request.user, pk=pk))
    return render(request, "etl/file_detail.html",
                  {"stored": stored, "preview": selectors.fetched_file_preview(stored=stored)})


@login_required
def file_download(request, pk: int):
    stored = found_or_404(selectors.fetched_file_get_for_viewer(user=request.user, pk=pk))
    return file_response(request, stored.file, stored.filename)


# --- fetch now ------------------------------------------------------------------------


@login_required
def fetch_now(request):
    form = FetchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            results = services.fetch_job_request_range(
                user=request.user, branch=v["branch"], pos_list=[v["pos"]] if v["pos"] else list(POS_NUMBERS),
                start=v["date"], end=v["end_date"] or v["date"], force=v["force"],
            )
        except PermissionDenied as exc:
            form.add_error(None, _error_text(exc))
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
        else:
            queued = sum(1 for _job, now in results if now)
            skipped = len(results) - queued
            messages.success(request, f"{queued} job(s) queued"
                             + (f"; {skipped} day(s) already done or under way (use force to reprocess)." if skipped else "."))
            if len(results) == 1:
                return redirect("etl:fetchjob_detail", pk=results[0][0].pk)
            end = v["end_date"] or v["date"]
            return redirect(f"{reverse('etl:job_list')}?branch={v['branch'].code}&start={v['date']}&end={end}")
    return render(request, "etl/fetch.html", {"form": form})


# --- missing-data calendar -------------------------------------------------------------


def _calendar_form(request):
    data = request.GET if "start" in request.GET else None
    form = MissingForm(data, initial=MissingForm.defaults())
    if data is None:
        form = MissingForm(MissingForm.defaults())
    return form


@login_required
def missing(request):
    form = _calendar_form(request)
    calendar = None
    if form.is_valid():
        v = form.cleaned_data
        calendar = selectors.missing_calendar(start=v["start"], end=v["end"],
                                              branches=[v["branch"]] if v.get("branch") else None)
    return render(request, "etl/missing.html", {"form": form, "calendar": calendar, "states": selectors.CELL_STATES})


def _describe_cells(cells) -> list[dict]:
    branches = {b.pk: b for b in Branch.objects.filter(pk__in={c[0] for c in cells})}
    return [{"branch": branches.get(b), "pos": pos, "date": day, "value": f"{b}:{pos}:{day.isoformat()}"}
            for b, pos, day in cells if b in branches]


@login_required
@require_POST
def missing_confirm(request):
    """Step 1 of queueing: list what will run and ask for confirmation."""
    form = CellsForm(request.POST)
    template = "etl/missing.html#confirm" if request.htmx else "etl/missing_confirm.html"
    if not form.is_valid():
        return render(request, template, {"errors": form.errors.get("cell"), "cells": []})
    try:
        services.missing_cells_validate(cells=form.cleaned_data["cell"])
    except ValidationError as exc:
        return render(request, template, {"errors": [_error_text(exc)], "cells": []})
    return render(request, template, {"cells": _describe_cells(sorted(set(form.cleaned_data["cell"])))})


@login_required
@require_POST
def missing_run(request):
    form = CellsForm(request.POST)
    template = "etl/missing.html#confirm" if request.htmx else "etl/missing_confirm.html"
    if not form.is_valid():
        return render(request, template, {"errors": form.errors.get("cell"), "cells": []})
    try:
        jobs = services.fetch_job_request_missing(user=request.user, cells=form.cleaned_data["cell"])
    except (ValidationError, PermissionDenied) as exc:
        return render(request, template, {"errors": [_error_text(exc)], "cells": []})
    context = {"queued": jobs, "job_ids": ",".join(str(j.pk) for j in jobs), "ws_path": FetchJobRowsStream.path()}
    if request.htmx:
        return render(request, "etl/missing.html#queued", context)
    messages.success(request, f"{len(jobs)} fetch job(s) queued.")
    return redirect("etl:missing")


# --- branches --------------------------------------------------------------------------


@login_required
def branch_list(request):
    return render(request, "etl/branches.html", {"branches": selectors.branch_list(),
                                                 "audit": selectors.audit_list(limit=20)})


def _staff_only(request):
    if not request.user.is_staff:
        raise PermissionDenied("Only administrators can change branches.")


@login_required
def branch_create(request):
    _staff_only(request)
    form = BranchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            branch = services.branch_create(user=request.user, **form.service_data())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Branch {branch.code} created.")
            return redirect("etl:branch_list")
    return render(request, "etl/branch_form.html", {"form": form, "branch": None, "parse_form": TestParseForm()})


@login_required
def branch_edit(request, pk: int):
    _staff_only(request)
    branch = get_object_or_404(Branch, pk=pk)
    form = BranchForm(request.POST or None, instance=Branch.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.branch_update(user=request.user, branch=branch, **form.service_data())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Branch {branch.code} saved.")
            return redirect("etl:branch_list")
    parse_form = TestParseForm(initial={"is_new_branch": branch.is_new_branch, "parser_config": branch.parser_config})
    effective = json.dumps(effective_config(is_new_branch=branch.is_new_branch, overrides=branch.parser_config),
                           indent=2, ensure_ascii=False)
    return render(request, "etl/branch_form.html", {"form": form, "branch": branch, "parse_form": parse_form,
                                                     "effective_config": effective,
                                                     "audit": selectors.audit_list(branch=branch, limit=20)})


def _form_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
@require_POST
def branch_test_parse(request):
    """Parse an uploaded sample with the config in the form (unsaved) and show rows and rejects."""
    form = TestParseForm(request.POST, request.FILES)
    preview = None
    if form.is_valid():
        v = form.cleaned_data
        try:
            preview = services.branch_test_parse(is_new_branch=v["is_new_branch"], parser_config=v["parser_config"],
                                                 filetype=v["filetype"],
                                                 raw=services.branch_test_parse_sample(v["file"]))
        except ValidationError as exc:
            _form_errors(form, exc)
    template = "etl/branch_form.html#preview" if request.htmx else "etl/test_parse.html"
    return render(request, template, {"parse_form": form, "preview": preview})


# --- records ---------------------------------------------------------------------------


@login_required
def record_list(request):
    form = RecordFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    page = _page(request, selectors.record_list(filters=filters))
    template = "etl/records.html#table" if request.htmx else "etl/records.html"
    return render(request, template, {"form": form, "page": page, "query": _query_without_page(request),
                                      "year_form": YearExportForm(), "exports": selectors.record_exports_for(user=request.user)[:5]})


@login_required
@require_POST
def record_export(request):
    if "year" in request.POST:
        form = YearExportForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give a year between 1990 and 2100.")
            return redirect("etl:record_list")
        filters = {"year": form.cleaned_data["year"]}
    else:
        form = RecordFilterForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Fix the filters before exporting: " + "; ".join(
                f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
            return redirect("etl:record_list")
        filters = form.cleaned_data
    export = services.record_export_create(user=request.user, filters=filters)
    return redirect("etl:recordexport_detail", pk=export.pk)


@login_required
def recordexport_detail(request, pk: int):
    export = found_or_404(selectors.record_export_get_for_viewer(user=request.user, pk=pk))
    if request.htmx:
        response = render(request, "etl/export_detail.html#live", {"export": export})
        if export.is_finished:
            response.status_code = STOP_POLLING
        return response
    return render(request, "etl/export_detail.html", {"export": export})


@login_required
def recordexport_download(request, pk: int):
    export = found_or_404(selectors.record_export_get_for_viewer(user=request.user, pk=pk))
    if not export.file:
        return HttpResponse("The export has no file yet.", status=404)
    return file_response(request, export.file, export.file.name.rsplit("/", 1)[-1])
