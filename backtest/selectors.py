"""Reads: instruments, bars, statistics, runs, sweeps and their results."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone as dt_timezone

import numpy as np
import pandas as pd
from django.db.models import Count, F, FloatField, Max, Min, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from backtest import charts
from backtest.engine import Bars
from backtest.metrics import METRICS, annual_periods
from backtest.models import (
    CALENDAR_INTERVALS, INTERVAL_SECONDS, BacktestRun, BarImport, Instrument, InstrumentKind, PriceBar, Sweep,
    SweepResult,
)
from core.permissions import get_for_viewer, visible_to
from core.templatetags.platform_format import params_text


def instrument_list(*, kind: str | None = None, active: bool | None = None) -> QuerySet[Instrument]:
    qs = Instrument.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(active=active)
    return qs


def instrument_get(*, symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol__iexact=(symbol or "").strip()).first()


def bars_queryset(*, instrument: Instrument, interval: str, start=None, end=None) -> QuerySet[PriceBar]:
    qs = PriceBar.objects.filter(instrument=instrument, interval=interval)
    if start is not None:
        qs = qs.filter(open_time__gte=start)
    if end is not None:
        qs = qs.filter(open_time__lte=end)
    return qs.order_by("open_time")


def bars_load(*, instrument: Instrument, interval: str, start=None, end=None, limit: int | None = None) -> Bars:
    qs = bars_queryset(instrument=instrument, interval=interval, start=start, end=end)
    if limit is not None:
        qs = qs[: limit + 1]
    rows = qs.values_list("open_time", "open", "high", "low", "close", "volume")
    return Bars.from_rows((int(t.timestamp()), o, h, l, c, v) for t, o, h, l, c, v in rows)


def bars_hash(bars: Bars) -> str:
    digest = hashlib.sha256()
    for arr in (bars.time.astype(np.int64), bars.open, bars.high, bars.low, bars.close, bars.volume):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=dt_timezone.utc)


def find_gaps(times: np.ndarray, *, interval: str, kind: str) -> list[dict]:
    """Missing bars between consecutive stored bars (epoch seconds, ascending).

    Crypto trades 24/7, so any step longer than the interval is a gap. Stocks
    close at night and on weekends: only missing weekdays count (and, for
    intraday bars, steps longer than the interval within one day).
    """
    step = INTERVAL_SECONDS[interval]
    if len(times) < 2:
        return []
    if interval in CALENDAR_INTERVALS:
        return _calendar_gaps(times, interval)
    diffs = np.diff(times)
    gaps = []
    for i in np.flatnonzero(diffs > step):
        a, b = int(times[i]), int(times[i + 1])
        if kind == InstrumentKind.CRYPTO:
            missing = (b - a) // step - 1
        else:
            day_a, day_b = np.datetime64(a // 86400, "D"), np.datetime64(b // 86400, "D")
            if day_a == day_b:
                missing = (b - a) // step - 1
            else:
                weekdays_between = int(np.busday_count(day_a + 1, day_b)) if day_b > day_a + 1 else 0
                per_day = 1 if step >= 86400 else 0
                missing = weekdays_between * max(per_day, 1)
                if step < 86400 and weekdays_between == 0:
                    missing = 0
        if missing > 0:
            gaps.append({"after": to_datetime(a).isoformat(), "before": to_datetime(b).isoformat(), "missing": int(missing)})
    return gaps


def _calendar_gaps(times: np.ndarray, interval: str) -> list[dict]:
    """Missing weeks or months between consecutive bars (every market has a bar each week and month)."""
    unit = "W" if interval == "1w" else "M"
    ordinals = pd.DatetimeIndex(np.asarray(times, dtype="int64") * 10**9).to_period(unit).asi8
    gaps = []
    for i in np.flatnonzero(np.diff(ordinals) > 1):
        gaps.append({"after": to_datetime(times[i]).isoformat(), "before": to_datetime(times[i + 1]).isoformat(),
                     "missing": int(ordinals[i + 1] - ordinals[i] - 1)})
    return gaps


def instrument_stats(*, instrument: Instrument, interval: str) -> dict:
    """First/last bar, count, gaps, total return and annualized volatility of closes."""
    bars = bars_load(instrument=instrument, interval=interval)
    out = {"symbol": instrument.symbol, "interval": interval, "bars": len(bars)}
    if not len(bars):
        return out | {"first": None, "last": None, "gaps": 0, "missing_bars": 0, "return_pct": None, "volatility_ann_pct": None}
    gaps = find_gaps(bars.time, interval=interval, kind=instrument.kind)
    log_ret = np.diff(np.log(bars.close))
    if interval in CALENDAR_INTERVALS:
        periods_per_year = annual_periods(INTERVAL_SECONDS[interval], instrument.annual_days)
    else:
        periods_per_year = instrument.annual_days * (86400 / INTERVAL_SECONDS[interval] if instrument.kind == InstrumentKind.CRYPTO else (1 if interval == "1d" else 8 * 3600 / INTERVAL_SECONDS[interval]))
    vol = float(np.std(log_ret, ddof=1) * math.sqrt(periods_per_year) * 100) if len(log_ret) > 1 else None
    return out | {
        "first": to_datetime(bars.time[0]).isoformat(),
        "last": to_datetime(bars.time[-1]).isoformat(),
        "gaps": len(gaps),
        "missing_bars": sum(g["missing"] for g in gaps),
        "first_close": float(bars.close[0]),
        "last_close": float(bars.close[-1]),
        "return_pct": float((bars.close[-1] / bars.close[0] - 1) * 100),
        "volatility_ann_pct": vol,
    }


def bar_coverage() -> list[dict]:
    """(instrument, interval) pairs with stored bars: count and first/last time, in one query."""
    rows = (
        PriceBar.objects.values("instrument_id", "interval")
        .annotate(count=Count("id"), first=Min("open_time"), last=Max("open_time"))
        .order_by("instrument_id", "interval")
    )
    return list(rows)


def latest_prices(*, interval: str = "1h", kind: str | None = None) -> list[dict]:
    """Last bar of every instrument at `interval` and its change on the bar before: one query."""
    bars = PriceBar.objects.filter(instrument=OuterRef("pk"), interval=interval).order_by("-open_time")
    qs = instrument_list(kind=kind).annotate(
        last_time=Subquery(bars.values("open_time")[:1]),
        last_close=Subquery(bars.values("close")[:1]),
        prev_close=Subquery(bars.values("close")[1:2]),
    )
    return [
        {
            "symbol": inst.symbol, "name": inst.name, "kind": inst.kind, "exchange": inst.exchange,
            "interval": interval,
            "time": inst.last_time.isoformat() if inst.last_time else None,
            "close": inst.last_close,
            "change_pct": (inst.last_close / inst.prev_close - 1) * 100 if inst.prev_close and inst.last_close else None,
        }
        for inst in qs
    ]


# --- runs and sweeps -------------------------------------------------------------


def run_list(*, user) -> QuerySet[BacktestRun]:
    # The equity curve and trade list are large: loaded only when a detail reads them.
    qs = BacktestRun.objects.select_related("instrument", "result", "owner").defer("result__equity", "result__trades")
    return visible_to(qs, user)


def sweep_list(*, user) -> QuerySet[Sweep]:
    return visible_to(Sweep.objects.select_related("owner").prefetch_related("instruments"), user)


# Who may see a run, a sweep or a bar import (its page, the API, its websocket): its owner and staff.


def run_get_for_viewer(*, user, pk) -> BacktestRun | None:
    return get_for_viewer(run_list(user=user), pk)


def sweep_get_for_viewer(*, user, pk) -> Sweep | None:
    return get_for_viewer(sweep_list(user=user), pk)


def bar_import_get_for_viewer(*, user, pk) -> BarImport | None:
    return get_for_viewer(visible_to(BarImport.objects.select_related("instrument"), user), pk)


def sweep_results_ordered(*, sweep: Sweep, sort: str = "sharpe", descending: bool = True) -> QuerySet[SweepResult]:
    """A sweep's results ordered in the database (so a page of a million results reads one page): by a metric
    (numbers; results without it last), a parameter, the instrument or `seq`; ties by `seq`. `sort` must be
    one of those names (the page's form and the API check it)."""
    if sort == "seq":
        key = F("seq")
    elif sort == "instrument":
        key = F("instrument__symbol")
    elif sort in METRICS:
        key = Cast(KeyTextTransform(sort, "metrics"), FloatField())
    else:
        key = KeyTransform(sort, "params")
    ordering = key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)
    return sweep.results.select_related("instrument").order_by(ordering, "seq")


def sweep_results_sorted(
    *, sweep: Sweep, metric: str = "sharpe", descending: bool = True, limit: int | None = 50
) -> list[SweepResult]:
    rows = sweep_results_ordered(sweep=sweep, sort=metric, descending=descending)
    return list(rows[:limit] if limit else rows)


def sweep_heatmap(*, sweep: Sweep, x: str, y: str, metric: str, instrument_id: int | None = None) -> list[dict]:
    """Best `metric` over the other parameters for each (x, y) pair, with the result that gave it (its number,
    instrument and every parameter, for the tooltip and for opening that result)."""
    best: dict[tuple, SweepResult] = {}
    qs = sweep.results.select_related("instrument")
    if instrument_id:
        qs = qs.filter(instrument_id=instrument_id)
    for row in qs.only("seq", "params", "metrics", "instrument__symbol"):
        if x not in row.params or y not in row.params:
            continue
        value = row.metrics.get(metric)
        if value is None:
            continue
        key = (row.params[x], row.params[y])
        if key not in best or value > best[key].metrics[metric]:
            best[key] = row
    return [{x: k[0], y: k[1], metric: row.metrics[metric], "result_seq": row.seq,
             "result_instrument": row.instrument.symbol,
             "result_params": params_text(row.params)}
            for k, row in best.items()]


# --- what the run and instrument pages show --------------------------------------------------


def instrument_price_chart(*, instrument: Instrument, interval: str) -> dict | None:
    """The close-price chart of every stored bar, or None when there are none."""
    bars = bars_load(instrument=instrument, interval=interval)
    if not len(bars):
        return None
    return charts.price_chart(time=bars.time, close=bars.close, symbol=instrument.symbol, interval=interval)


def run_report(*, run: BacktestRun) -> dict:
    """A finished run's result with its charts, metric rows and last trades; {} before there is a result."""
    result = run.result
    if result is None:
        return {}
    time = np.asarray(result.equity.get("t", []), dtype=np.int64)
    equity = np.asarray(result.equity.get("equity", []), dtype=float)
    bars = bars_load(instrument=run.instrument, interval=run.interval, start=result.data_start, end=result.data_end)
    close = bars.close if len(bars) == len(time) else None
    specs = {"drawdown": charts.drawdown_chart(time=time, equity=equity)}
    if close is not None:
        specs["equity"] = charts.equity_chart(time=time, equity=equity, close=close, warmup=result.warmup,
                                              initial_cash=result.initial_cash)
        specs["trades"] = charts.trades_chart(time=time, close=close, trades=result.trades)
    metric_rows = [
        {"key": k, "label": label, "unit": unit, "value": result.metrics.get(k)}
        for k, (label, unit, _) in METRICS.items()
    ]
    return {"result": result, "specs": specs, "metric_rows": metric_rows,
            "trades": result.trades[-500:], "trades_total": len(result.trades)}


# --- portfolio runs ------------------------------------------------------------------------------


def portfolio_list(*, user) -> QuerySet:
    """Portfolio runs the user may see (their own; staff: all), without their large result columns."""
    from backtest.models import Portfolio

    qs = Portfolio.objects.select_related("owner").prefetch_related("instruments").defer(*Portfolio.list_defer[1:])
    return visible_to(qs, user)


def portfolio_get_for_viewer(*, user, pk):
    """Who may see a portfolio run (its page, the API, its websocket): its owner and staff."""
    from backtest.models import Portfolio

    return get_for_viewer(visible_to(Portfolio.objects.prefetch_related("instruments"), user), pk)


def portfolio_report(*, portfolio) -> dict:
    """A finished portfolio's charts, metric rows and contributions; {} before it has a result."""
    equity = portfolio.equity or {}
    if not equity.get("t"):
        return {}
    time = np.asarray(equity["t"], dtype=np.int64)
    values = np.asarray(equity["equity"], dtype=float)
    allocation = portfolio.allocation
    specs = {
        "equity": charts.portfolio_equity_chart(time=time, equity=values),
        "drawdown": charts.drawdown_chart(time=time, equity=values),
        "allocation": charts.allocation_chart(time=np.asarray(allocation["t"], dtype=np.int64),
                                              symbols=allocation["symbols"], weights=allocation["weights"],
                                              cash=allocation["cash"]),
    }
    metric_rows = [{"key": k, "label": label, "unit": unit, "value": portfolio.metrics.get(k)}
                   for k, (label, unit, _) in METRICS.items()]
    return {"specs": specs, "metric_rows": metric_rows, "trades": portfolio.trades[-500:],
            "trades_total": len(portfolio.trades)}
