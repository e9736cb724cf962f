"""HTMX pages: overview, instrument charts, runs, sweeps. Thin: forms in, services/selectors out."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from backtest import charts, conf, market_services, selectors, services, uploads
from backtest.consumers import SweepStream
from backtest.engine import SEMANTICS
from backtest.forms import HeatmapForm, ImportForm, RunForm, SortForm, SweepForm
from backtest.metrics import METRICS
from backtest.models import BarImport, Interval
from backtest.strategies import STRATEGIES
from core.permissions import found_or_404
from core.services import job_cancel

STOP_POLLING = 286


def _service_errors_to_form(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _strategy_schemas() -> str:
    return json.dumps({k: s.schema() for k, s in STRATEGIES.items()})


def _execution_help() -> dict:
    """The execution parameters and the fill rules, explained beside the run and sweep forms."""
    return {"execution_params": [p.as_schema() for p in STRATEGIES["sma_cross"].execution_params],
            "semantics": SEMANTICS}


@login_required
def index(request):
    return render(request, "backtest/index.html", {
        "latest": selectors.latest_prices(interval=request.GET.get("interval", "1h") if request.GET.get("interval") in Interval.values else "1h"),
        "coverage": selectors.bar_coverage(),
        "runs": selectors.run_list(user=request.user)[:10],
        "sweeps": selectors.sweep_list(user=request.user)[:10],
        "strategies": [s.schema() for s in STRATEGIES.values()],
        "intervals": Interval.values,
        **_execution_help(),
    })


@login_required
def instrument_detail(request, symbol: str):
    instrument = selectors.instrument_get(symbol=symbol)
    if instrument is None:
        raise Http404("Unknown instrument.")
    interval = request.GET.get("interval", "1h")
    if interval not in Interval.values:
        interval = "1h"
    spec = selectors.instrument_price_chart(instrument=instrument, interval=interval)
    context = {
        "instrument": instrument, "interval": interval, "intervals": Interval.values,
        "stats": selectors.instrument_stats(instrument=instrument, interval=interval), "spec": spec,
    }
    if request.user.is_staff:
        context["import_form"] = ImportForm(initial={"symbol": instrument.symbol, "interval": interval})
        context["import_max_mib"] = conf.IMPORT_MAX_BYTES / 2**20
    return render(request, "backtest/instrument.html", context)


# --- bar imports (staff: market data is shared by everyone) ----------------------------------


def _import_context(form, job=None) -> dict:
    return {"import_form": form, "import_job": job, "import_max_mib": conf.IMPORT_MAX_BYTES / 2**20}


@login_required
@csrf_exempt  # the CSRF check runs in _bars_import_post, after the upload handlers are set
def bars_import(request):
    """Upload page (GET) and upload (POST) of an OHLCV CSV; the import runs as a background job."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can import market data.")
    if request.method == "POST":
        handler = uploads.install(request)  # before anything reads the body
        return _bars_import_post(request, handler)
    form = ImportForm(initial={k: v for k, v in request.GET.items() if k in ("symbol", "interval")})
    return render(request, "backtest/import.html", _import_context(form) | {
        "imports": BarImport.objects.select_related("instrument").order_by("-created_at")[:20],
    })


@csrf_protect
def _bars_import_post(request, handler):
    form = ImportForm(request.POST, request.FILES, too_large=handler.too_large)
    job = None
    if form.is_valid():
        d = form.cleaned_data
        try:
            instrument = d["instrument"] or market_services.instrument_create(
                symbol=d["symbol"], kind=d["kind"], exchange=d["exchange"])
            job = market_services.bars_import_create(
                owner=request.user, instrument=instrument, interval=d["interval"], upload=d["file"], fmt=d["format"])
        except ValidationError as exc:
            _service_errors_to_form(form, exc)
    if job is not None and not request.htmx:
        return redirect("backtest:barimport_detail", pk=job.pk)
    if job is not None:  # a fresh form for the next file, and this import's progress below it
        form = ImportForm(initial={"symbol": form.cleaned_data["symbol"], "interval": form.cleaned_data["interval"]})
    if request.htmx:
        return render(request, "backtest/partials/import_section.html", _import_context(form, job))
    return render(request, "backtest/import.html", _import_context(form) | {
        "imports": BarImport.objects.select_related("instrument").order_by("-created_at")[:20],
    })


@login_required
def barimport_detail(request, pk: int):
    job = found_or_404(selectors.bar_import_get_for_viewer(user=request.user, pk=pk))
    if request.htmx:
        return render(request, "backtest/partials/import_body.html", {"job": job})
    return render(request, "backtest/import_detail.html", {"job": job})


# --- runs ------------------------------------------------------------------------------------


@login_required
def run_list(request):
    return render(request, "backtest/run_list.html", {"runs": selectors.run_list(user=request.user)[:200]})


@login_required
def run_new(request):
    form = RunForm(request.POST or None, initial={"params": json.dumps(STRATEGIES["sma_cross"].defaults()), **request.GET.dict()})
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            run, created = services.backtest_run_create(owner=request.user, **data)
        except ValidationError as exc:
            _service_errors_to_form(form, exc)
        else:
            if not created:
                messages.info(request, "You already ran this exact backtest; here is its result.")
            return redirect("backtest:backtestrun_detail", pk=run.pk)
    return render(request, "backtest/run_new.html", {"form": form, "schemas": _strategy_schemas(),
                                                      **_execution_help()})


def _run_context(run) -> dict:
    return {"run": run, "semantics": SEMANTICS, "metrics_meta": METRICS} | selectors.run_report(run=run)


@login_required
def run_detail(request, pk: int):
    run = found_or_404(selectors.run_get_for_viewer(user=request.user, pk=pk))
    context = _run_context(run) if run.is_finished else {"run": run}
    if request.htmx:
        response = render(request, "backtest/partials/run_body.html", context)
        if run.is_finished:
            response.status_code = 200
            response["HX-Refresh"] = "true"  # full page once: charts and scripts load cleanly
        return response
    return render(request, "backtest/run_detail.html", context)


# --- sweeps -----------------------------------------------------------------------------------


@login_required
def sweep_list(request):
    return render(request, "backtest/sweep_list.html", {"sweeps": selectors.sweep_list(user=request.user)[:200]})


@login_required
def sweep_new(request):
    form = SweepForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["instruments"] = list(data["instruments"])
        data["seed"] = data.get("seed") or 0
        try:
            sweep = services.sweep_create(owner=request.user, **data)
        except ValidationError as exc:
            _service_errors_to_form(form, exc)
        else:
            return redirect("backtest:sweep_detail", pk=sweep.pk)
    return render(request, "backtest/sweep_new.html", {"form": form, "schemas": _strategy_schemas(),
                                                        **_execution_help()})


SWEEP_TABLE_METRICS = ["return_pct", "sharpe", "sortino", "calmar", "cagr_pct", "max_drawdown_pct", "win_rate_pct",
                       "profit_factor", "sqn", "trades", "exposure_pct"]
SWEEP_TABLE_PAGE = 50


def _sweep_table_context(request, sweep) -> dict:
    """The results table: every result of the sweep, sorted and paged in the database (`?sort=&dir=&page=`)."""
    param_names = list(sweep.param_sets[0]) if sweep.param_sets else []
    sort_form = SortForm(request.GET or None, params=param_names)
    sort, direction = sort_form.ordering()
    rows = selectors.sweep_results_ordered(sweep=sweep, sort=sort, descending=direction == "desc")
    page = Paginator(rows, SWEEP_TABLE_PAGE).get_page(request.GET.get("page"))
    headers = [("seq", "#"), ("instrument", "Instrument")] + [(p, p) for p in param_names] + [
        (c, METRICS[c][0]) for c in SWEEP_TABLE_METRICS]

    def url(**query) -> str:
        return "?" + urlencode(query)

    def header(key: str, label: str) -> dict:
        # A click on the sorted column turns its order; another column starts at its natural one.
        if key == sort:
            next_dir = "asc" if direction == "desc" else "desc"
        else:
            next_dir = "desc" if key in METRICS else "asc"
        return {"key": key, "label": label, "sorted": key == sort, "url": url(sort=key, dir=next_dir)}

    return {
        "sweep": sweep, "page": page, "sort": sort, "dir": direction, "sort_form": sort_form,
        "param_names": param_names, "columns": [(c, METRICS[c][0]) for c in SWEEP_TABLE_METRICS],
        "headers": [header(key, label) for key, label in headers],
        "prev_url": url(sort=sort, dir=direction, page=page.previous_page_number()) if page.has_previous() else "",
        "next_url": url(sort=sort, dir=direction, page=page.next_page_number()) if page.has_next() else "",
    }


@login_required
def sweep_detail(request, pk: int):
    sweep = found_or_404(selectors.sweep_get_for_viewer(user=request.user, pk=pk))
    context = _sweep_table_context(request, sweep)
    if request.htmx and not request.htmx.boosted:
        return render(request, "backtest/sweep_detail.html#results", context)
    varied = [k for k, v in sweep.grid.items() if isinstance(v, dict) or (isinstance(v, list) and len(v) > 1)]
    context["heatmap_form"] = HeatmapForm(params=varied or context["param_names"], instruments=sweep.instruments.all())
    context["live_metrics"] = [(c, METRICS[c][0]) for c in services.LIVE_METRICS]
    context["ws_path"] = SweepStream.path(sweep.pk)
    return render(request, "backtest/sweep_detail.html", context)


@login_required
def sweep_heatmap(request, pk: int):
    sweep = found_or_404(selectors.sweep_get_for_viewer(user=request.user, pk=pk))
    params = list(sweep.param_sets[0]) if sweep.param_sets else []
    form = HeatmapForm(request.GET, params=params, instruments=sweep.instruments.all())
    spec, error = None, ""
    if form.is_valid():
        d = form.cleaned_data
        cells = selectors.sweep_heatmap(sweep=sweep, x=d["x"], y=d["y"], metric=d["metric"],
                                        instrument_id=d.get("instrument"))
        if cells:
            spec = charts.heatmap_chart(cells=cells, x=d["x"], y=d["y"], metric=d["metric"])
        else:
            error = "No results with a value for this metric yet."
    else:
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    # The page opens a clicked cell's result by posting to this address with the cell's result number.
    open_url = reverse("backtest:sweep_result_open", args=[sweep.pk, 0]).removesuffix("/0/open/") + "/{seq}/open/"
    return render(request, "backtest/partials/heatmap.html", {"spec": spec, "error": error, "open_url": open_url})


@login_required
@require_POST
def sweep_cancel(request, pk: int):
    sweep = found_or_404(selectors.sweep_get_for_viewer(user=request.user, pk=pk))
    if not sweep.is_finished:
        job_cancel(job=sweep, by=request.user)
        messages.info(request, "Cancelling the sweep…")
    return redirect("backtest:sweep_detail", pk=sweep.pk)


@login_required
@require_POST
def sweep_result_open(request, pk: int, seq: int):
    sweep = found_or_404(selectors.sweep_get_for_viewer(user=request.user, pk=pk))
    row = get_object_or_404(sweep.results.select_related("instrument"), seq=seq)
    try:
        run, _ = services.sweep_result_open(owner=request.user, sweep=sweep, result=row)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("backtest:sweep_detail", pk=sweep.pk)
    return redirect("backtest:backtestrun_detail", pk=run.pk)
