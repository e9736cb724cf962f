"""Output shapes shared by the API and the pages' JSON (input serializers live with their API views)."""

from __future__ import annotations

import numpy as np
from django.urls import reverse

from backtest.consumers import STREAMS
from backtest.engine import SEMANTICS
from backtest.models import BacktestResult, BacktestRun, Sweep, SweepResult


def _iso(value):
    return value.isoformat() if value else None


def job_fields(job) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "cancel_requested": job.cancel_requested,
        "stream": STREAMS[job.kind].path(job.pk),
        "page": job.get_absolute_url(),
    }


def cost_fields(obj) -> dict:
    return {"commission_bps": obj.commission_bps, "slippage_bps": obj.slippage_bps, "initial_cash": obj.initial_cash}


def result_data(result: BacktestResult, *, equity: bool = False) -> dict:
    data = {
        "key": result.key,
        "data_start": _iso(result.data_start),
        "data_end": _iso(result.data_end),
        "bar_count": result.bar_count,
        "bars_hash": result.bars_hash,
        "engine_version": result.engine_version,
        "fractional_units": result.fractional,
        "semantics": SEMANTICS,
        "metrics": result.metrics,
        "trades": result.trades,
        "open_trade": result.open_trade,
        "compute_ms": result.compute_ms,
    }
    if equity:
        values = np.asarray(result.equity.get("equity", []), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown = np.nan_to_num((values / np.maximum.accumulate(values) - 1) * 100) if len(values) else values
        data["equity"] = {**result.equity, "drawdown_pct": [round(float(x), 6) for x in drawdown]}
    return data


def run_data(run: BacktestRun, *, detail: bool = False, equity: bool = False) -> dict:
    data = {
        **job_fields(run),
        "symbol": run.instrument.symbol,
        "interval": run.interval,
        "start": _iso(run.start),
        "end": _iso(run.end),
        "strategy": run.strategy,
        "params": run.params,
        **cost_fields(run),
        "reused": run.reused,
        "url": reverse("api-backtest-run-detail", args=[run.pk]),
    }
    if run.result_id:
        data["metrics"] = run.result.metrics
        if detail:
            data["result"] = result_data(run.result, equity=equity)
    return data


def sweep_result_data(row: SweepResult) -> dict:
    return {"seq": row.seq, "instrument": row.instrument.symbol, "params": row.params, "metrics": row.metrics}


def sweep_data(sweep: Sweep, *, results: list[SweepResult] | None = None) -> dict:
    data = {
        **job_fields(sweep),
        "symbols": [i.symbol for i in sweep.instruments.all()],
        "interval": sweep.interval,
        "start": _iso(sweep.start),
        "end": _iso(sweep.end),
        "strategy": sweep.strategy,
        "grid": sweep.grid,
        "sample": sweep.sample,
        "seed": sweep.seed,
        **cost_fields(sweep),
        "combos": sweep.combos,
        "skipped_by_rules": sweep.skipped,
        "total": sweep.total,
        "done": sweep.done,
        "url": reverse("api-backtest-sweep-detail", args=[sweep.pk]),
    }
    if results is not None:
        data["results"] = [sweep_result_data(r) for r in results]
    return data


def import_data(job) -> dict:
    return {
        **job_fields(job), "symbol": job.instrument.symbol, "interval": job.interval, "format": job.format,
        "filename": job.filename, "size": job.size, "report": job.report or None,
        "url": reverse("api-market-import-detail", args=[job.pk]),
    }


# --- documented shapes of the dicts above (the API schema; the dict builders are what runs) ----------
from rest_framework import serializers  # noqa: E402


class BacktestJobFieldsOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="queued | running | succeeded | failed | cancelled")
    progress = serializers.FloatField()
    message = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    cancel_requested = serializers.BooleanField()
    stream = serializers.CharField(help_text="The job's websocket path")
    page = serializers.CharField(help_text="The job's page")


class BacktestCostFieldsOutput(BacktestJobFieldsOutput):
    commission_bps = serializers.FloatField()
    slippage_bps = serializers.FloatField()
    initial_cash = serializers.FloatField()


class BacktestRunOutput(BacktestCostFieldsOutput):
    symbol = serializers.CharField()
    interval = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    strategy = serializers.CharField()
    params = serializers.DictField()
    reused = serializers.BooleanField()
    url = serializers.CharField()
    metrics = serializers.DictField(required=False, help_text="Once the run has a result")


class BacktestRunDetailOutput(BacktestRunOutput):
    result = serializers.DictField(required=False, help_text="Once the run has a result: metrics, trades, equity …")


class BacktestRunCreateOutput(BacktestRunDetailOutput):
    deduplicated = serializers.BooleanField(help_text="An identical run existed or its result was reused")


class BacktestSweepResultOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    instrument = serializers.CharField()
    params = serializers.DictField()
    metrics = serializers.DictField()


class BacktestSweepOutput(BacktestCostFieldsOutput):
    symbols = serializers.ListField(child=serializers.CharField())
    interval = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    strategy = serializers.CharField()
    grid = serializers.DictField()
    sample = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField()
    combos = serializers.IntegerField()
    skipped_by_rules = serializers.IntegerField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    url = serializers.CharField()


class BacktestSweepDetailOutput(BacktestSweepOutput):
    results = BacktestSweepResultOutput(many=True)


class MarketImportOutput(BacktestJobFieldsOutput):
    symbol = serializers.CharField()
    interval = serializers.CharField()
    format = serializers.CharField()
    filename = serializers.CharField(allow_blank=True)
    size = serializers.IntegerField(allow_null=True)
    report = serializers.DictField(allow_null=True)
    url = serializers.CharField()


# --- walk-forward optimizations --------------------------------------------------------------------


def walkforward_data(walkforward, *, detail: bool = False, equity: bool = False) -> dict:
    from backtest.walkforward import RULES

    data = {
        **job_fields(walkforward),
        "symbol": walkforward.instrument.symbol,
        "interval": walkforward.interval,
        "start": _iso(walkforward.start),
        "end": _iso(walkforward.end),
        "strategy": walkforward.strategy,
        "grid": walkforward.grid,
        "combos": walkforward.combos,
        "skipped_by_rules": walkforward.skipped,
        "mode": walkforward.mode,
        "in_sample_bars": walkforward.in_sample_bars,
        "out_of_sample_bars": walkforward.out_of_sample_bars,
        "step_bars": walkforward.step_bars,
        "metric": walkforward.metric,
        **cost_fields(walkforward),
        "window_count": walkforward.window_count,
        "windows_done": walkforward.windows_done,
        "url": reverse("api-backtest-walkforward-detail", args=[walkforward.pk]),
    }
    if detail:
        data.update({
            "rules": RULES, "semantics": SEMANTICS, "bar_count": walkforward.bar_count,
            "windows": walkforward.windows, "metrics": walkforward.metrics,
        })
        if equity:
            data["equity"] = walkforward.equity or None
    return data


class BacktestWalkForwardOutput(BacktestCostFieldsOutput):
    symbol = serializers.CharField()
    interval = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    strategy = serializers.CharField()
    grid = serializers.DictField()
    combos = serializers.IntegerField()
    skipped_by_rules = serializers.IntegerField()
    mode = serializers.CharField(help_text="rolling | anchored")
    in_sample_bars = serializers.IntegerField()
    out_of_sample_bars = serializers.IntegerField()
    step_bars = serializers.IntegerField()
    metric = serializers.CharField(help_text="The in-sample metric that chooses each window's parameters")
    window_count = serializers.IntegerField()
    windows_done = serializers.IntegerField()
    url = serializers.CharField()


class BacktestWalkForwardDetailOutput(BacktestWalkForwardOutput):
    rules = serializers.ListField(child=serializers.CharField())
    semantics = serializers.ListField(child=serializers.CharField())
    bar_count = serializers.IntegerField()
    windows = serializers.ListField(child=serializers.DictField(), help_text=(
        "Per window: index, bar ranges (is_start, is_end, oos_start, oos_end; ends exclusive) and their first/last "
        "bar times, partial, params chosen, start_equity, in_sample and out_of_sample metrics, trades"))
    metrics = serializers.DictField(help_text="Metrics of the stitched out-of-sample curve")
    equity = serializers.DictField(allow_null=True, required=False,
                                   help_text='With ?equity=1, the stitched curve: {"t", "equity", "close"}')
