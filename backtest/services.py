"""Writes of backtests: single runs (deduplicated through stored results) and sweeps."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from backtest import conf, selectors
from backtest.engine import ENGINE_VERSION, Bars, Costs, EngineResult, run_backtest
from backtest.indicators import IndicatorCache
from backtest.models import BacktestResult, BacktestRun, Instrument, Interval, Sweep, SweepResult
from backtest.strategies import ParamError, Strategy, param_value_clean, params_clean, strategy_get
from backtest.sweep_pool import Chunk, SweepPool, chunk_size, sweep_processes
from core.models import JobStatus
from core.services import job_enqueue, job_events_add, job_progress, job_raise_if_cancelled, job_succeed

#: Metrics sent live with each sweep result (all are stored).
LIVE_METRICS = (
    "return_pct", "buy_hold_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct",
    "trades", "win_rate_pct", "profit_factor", "expectancy_pct", "sqn", "exposure_pct", "volatility_ann_pct",
)


# --- validation shared by runs and sweeps --------------------------------------------


def _clean_strategy(key: str) -> Strategy:
    try:
        return strategy_get(key)
    except ParamError as exc:
        raise ValidationError({"strategy": exc.errors["strategy"]}) from None


def _clean_params(strategy: Strategy, params: Any) -> dict:
    try:
        return params_clean(strategy, params)
    except ParamError as exc:
        raise ValidationError({"params": [f"{k}: {v}" for k, v in exc.errors.items()]}) from None


def _clean_range(*, interval: str, start, end) -> None:
    if interval not in Interval.values:
        raise ValidationError({"interval": f"Choose one of {', '.join(Interval.values)}."})
    if start and end and start >= end:
        raise ValidationError({"end": "The end must be after the start."})


def _costs(*, instrument: Instrument, commission_bps: float, slippage_bps: float, initial_cash: float) -> Costs:
    return Costs(
        initial_cash=float(initial_cash), commission_bps=float(commission_bps),
        slippage_bps=float(slippage_bps), fractional=instrument.fractional,
    )


def _load_bars(*, instrument: Instrument, interval: str, start, end, field: str = "start") -> Bars:
    bars = selectors.bars_load(instrument=instrument, interval=interval, start=start, end=end, limit=conf.MAX_BARS)
    if len(bars) > conf.MAX_BARS:
        raise ValidationError({field: f"The range holds more than {conf.MAX_BARS:,} bars; narrow it."})
    if len(bars) < 2:
        raise ValidationError(
            {field: f"{instrument.symbol} has fewer than two {interval} bars in this range; import or fetch data first."}
        )
    return bars


def result_key(*, instrument: Instrument, interval: str, bars_hash: str, strategy: str, params: dict, costs: Costs) -> str:
    """Everything a result depends on: the data (by hash), the strategy, parameters, costs, engine."""
    payload = {
        "instrument": instrument.pk, "interval": interval, "bars": bars_hash, "strategy": strategy,
        "params": params, "cash": costs.initial_cash, "commission_bps": costs.commission_bps,
        "slippage_bps": costs.slippage_bps, "fractional": costs.fractional,
        "annual_days": instrument.annual_days, "engine": ENGINE_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --- single runs -------------------------------------------------------------------------


def run_create(
    *,
    owner,
    instrument: Instrument,
    interval: str,
    strategy: str,
    params: dict | None = None,
    start=None,
    end=None,
    commission_bps: float = 10.0,
    slippage_bps: float = 0.0,
    initial_cash: float = 10_000.0,
) -> tuple[BacktestRun, bool]:
    """Request a backtest. Returns (run, created).

    An identical request of the same owner (same data by hash, strategy,
    parameters, costs, engine) returns that owner's existing run. When the
    result is already stored (from anyone's request) a new run is created
    already finished, pointing at it; otherwise a job computes it.
    """
    strat = _clean_strategy(strategy)
    clean = _clean_params(strat, params)
    _clean_range(interval=interval, start=start, end=end)
    run = BacktestRun(
        owner=owner, instrument=instrument, interval=interval, start=start, end=end, strategy=strat.key,
        params=clean, commission_bps=commission_bps, slippage_bps=slippage_bps, initial_cash=initial_cash,
    )
    run.full_clean(exclude=["owner", "result", "request_key"])
    bars = _load_bars(instrument=instrument, interval=interval, start=start, end=end)
    costs = _costs(instrument=instrument, commission_bps=commission_bps, slippage_bps=slippage_bps, initial_cash=initial_cash)
    key = result_key(
        instrument=instrument, interval=interval, bars_hash=selectors.bars_hash(bars), strategy=strat.key,
        params=clean, costs=costs,
    )
    with transaction.atomic():
        existing = (
            BacktestRun.objects.filter(owner=owner, request_key=key)
            .exclude(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).order_by("-created_at").first()
        )
        if existing is not None:
            return existing, False
        run.request_key = key
        stored = BacktestResult.objects.filter(key=key).first()
        run.save()
        if stored is not None:
            job_succeed(job=run, message="Identical request: the stored result was reused.", result=stored, reused=True)
        else:
            job_enqueue(job=run)
    return run, True


def _equity_payload(bars: Bars, result: EngineResult) -> dict:
    return {"t": bars.time.tolist(), "equity": [round(float(x), 6) for x in result.equity]}


def result_store(
    *, key: str, instrument: Instrument, interval: str, strategy: str, params: dict, costs: Costs,
    bars: Bars, bars_hash: str, engine_result: EngineResult, compute_ms: float,
) -> BacktestResult:
    result = BacktestResult(
        key=key, instrument=instrument, interval=interval, strategy=strategy, params=params,
        commission_bps=costs.commission_bps, slippage_bps=costs.slippage_bps, initial_cash=costs.initial_cash,
        fractional=costs.fractional, data_start=selectors.to_datetime(bars.time[0]),
        data_end=selectors.to_datetime(bars.time[-1]), bar_count=len(bars), bars_hash=bars_hash,
        engine_version=ENGINE_VERSION, metrics=engine_result.metrics, trades=engine_result.trade_dicts(bars),
        open_trade=engine_result.open_trade, equity=_equity_payload(bars, engine_result),
        warmup=engine_result.warmup, compute_ms=compute_ms,
    )
    result.full_clean()
    try:
        with transaction.atomic():
            result.save()
    except IntegrityError:  # computed concurrently by another worker: same key, same content
        return BacktestResult.objects.get(key=key)
    return result


def run_execute(run: BacktestRun) -> None:
    """Job body: compute (or reuse) the result of a run."""
    instrument = run.instrument
    job_progress(job=run, fraction=0.05, message="Loading bars")
    bars = _load_bars(instrument=instrument, interval=run.interval, start=run.start, end=run.end)
    costs = _costs(instrument=instrument, commission_bps=run.commission_bps, slippage_bps=run.slippage_bps,
                   initial_cash=run.initial_cash)
    digest = selectors.bars_hash(bars)
    key = result_key(instrument=instrument, interval=run.interval, bars_hash=digest, strategy=run.strategy,
                     params=run.params, costs=costs)
    stored = BacktestResult.objects.filter(key=key).first()
    if stored is not None:
        job_succeed(job=run, message="The stored result was reused.", result=stored, reused=True, request_key=key)
        return
    job_raise_if_cancelled(job=run)
    job_progress(job=run, fraction=0.2, message=f"Backtesting {len(bars):,} bars")
    t0 = time.perf_counter()
    engine_result = run_backtest(
        bars=bars, strategy=strategy_get(run.strategy), params=run.params, costs=costs, annual_days=instrument.annual_days
    )
    elapsed = (time.perf_counter() - t0) * 1000
    stored = result_store(
        key=key, instrument=instrument, interval=run.interval, strategy=run.strategy, params=run.params,
        costs=costs, bars=bars, bars_hash=digest, engine_result=engine_result, compute_ms=elapsed,
    )
    m = engine_result.metrics
    job_succeed(
        job=run, result=stored, request_key=key,
        message=f"{m['trades']} trades, return {m['return_pct']:.2f}% in {elapsed:.0f} ms",
    )


# --- sweeps --------------------------------------------------------------------------------


def _expand_values(strategy: Strategy, name: str, spec: Any) -> list:
    if isinstance(spec, dict):
        try:
            lo, hi, step = (float(spec[k]) for k in ("start", "stop", "step"))
        except (KeyError, TypeError, ValueError):
            raise ValueError("A range needs numeric start, stop and step.") from None
        if not all(math.isfinite(v) for v in (lo, hi, step)) or step <= 0 or hi < lo:
            raise ValueError("A range needs finite numbers, step > 0 and stop >= start.")
        count = (hi - lo) / step + 1
        if not math.isfinite(count) or count > 1000:
            raise ValueError("A range may hold at most 1000 values.")
        spec = [lo + i * step for i in range(int(count + 1e-9))]
    elif not isinstance(spec, list):
        spec = [spec]
    if not spec:
        raise ValueError("Give at least one value.")
    if len(spec) > 1000:
        raise ValueError("At most 1000 values per parameter.")
    values = []
    for raw in spec:
        value = param_value_clean(strategy, name, round(raw, 10) if isinstance(raw, float) else raw)
        if value not in values:
            values.append(value)
    return values


def sweep_param_sets(*, strategy: Strategy, grid: dict, sample: int | None, seed: int) -> tuple[list[dict], int]:
    """The parameter sets of a grid (or a random sample of it) and how many grid points the rules dropped."""
    if not isinstance(grid, dict) or not grid:
        raise ValidationError({"grid": "Give at least one parameter with its values."})
    errors, axes = {}, {}
    for name, spec in grid.items():
        try:
            axes[name] = _expand_values(strategy, name, spec)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError({"grid": [f"{k}: {v}" for k, v in errors.items()]})
    size = 1
    for values in axes.values():
        size *= len(values)
    limit = conf.SWEEP_MAX_COMBOS
    if size > 10_000_000:
        raise ValidationError({"grid": f"The grid has {size:,} points; at most 10,000,000 can be sampled."})
    if size > limit and not sample:
        raise ValidationError({"grid": f"The grid has {size:,} parameter sets; the limit is {limit:,}. "
                                       "Narrow it or set a random sample size."})
    if sample is not None and not (1 <= sample <= limit):
        raise ValidationError({"sample": f"The sample size must be between 1 and {limit:,}."})
    defaults = strategy.defaults()
    names = list(axes)

    def point(index: int) -> dict:
        """The grid point with this index (mixed radix over the axes; the last axis varies fastest)."""
        chosen = {}
        for name in reversed(names):
            index, digit = divmod(index, len(axes[name]))
            chosen[name] = axes[name][digit]
        return {**defaults, **{name: chosen[name] for name in names}}

    if sample and sample < size:
        # Random grid points, drawn without building the grid; extra draws cover points the rules drop.
        candidates = random.Random(seed).sample(range(size), min(size, max(4 * sample, sample + 1000)))
    else:
        sample, candidates = None, range(size)
    valid, dropped = [], 0
    for index in candidates:
        params = point(index)
        if strategy.check(params):
            dropped += 1
            continue
        valid.append(params)
        if sample and len(valid) == sample:
            break
    if not valid:
        raise ValidationError({"grid": "No parameter set in this grid satisfies the strategy's rules "
                                       "(e.g. fast < slow)."})
    return valid, dropped


def sweep_create(
    *,
    owner,
    instruments: list[Instrument],
    interval: str,
    strategy: str,
    grid: dict,
    sample: int | None = None,
    seed: int = 0,
    start=None,
    end=None,
    commission_bps: float = 10.0,
    slippage_bps: float = 0.0,
    initial_cash: float = 10_000.0,
) -> Sweep:
    strat = _clean_strategy(strategy)
    _clean_range(interval=interval, start=start, end=end)
    instruments = list(dict.fromkeys(instruments))
    if not instruments:
        raise ValidationError({"instruments": "Choose at least one instrument."})
    if len(instruments) > conf.SWEEP_MAX_INSTRUMENTS:
        raise ValidationError({"instruments": f"At most {conf.SWEEP_MAX_INSTRUMENTS} instruments per sweep."})
    param_sets, dropped = sweep_param_sets(strategy=strat, grid=grid, sample=sample, seed=seed)
    for instrument in instruments:
        count = selectors.bars_queryset(instrument=instrument, interval=interval, start=start, end=end).count()
        if count < 2:
            raise ValidationError({"instruments": f"{instrument.symbol} has fewer than two {interval} bars in this range."})
        if count > conf.MAX_BARS:
            raise ValidationError({"start": f"The range holds more than {conf.MAX_BARS:,} bars; narrow it."})
    sweep = Sweep(
        owner=owner, interval=interval, start=start, end=end, strategy=strat.key, grid=grid, sample=sample,
        seed=seed, commission_bps=commission_bps, slippage_bps=slippage_bps, initial_cash=initial_cash,
        param_sets=param_sets, combos=len(param_sets), total=len(param_sets) * len(instruments), skipped=dropped,
    )
    sweep.full_clean(exclude=["owner"])
    with transaction.atomic():
        sweep.save()
        sweep.instruments.set(instruments)
        job_enqueue(job=sweep)
    return sweep


def _live(metrics: dict) -> dict:
    return {k: metrics.get(k) for k in LIVE_METRICS}


def _serial_results(sweep: Sweep, instruments: list[Instrument], strat: Strategy):
    for instrument in instruments:
        bars = _load_bars(instrument=instrument, interval=sweep.interval, start=sweep.start, end=sweep.end,
                          field="instruments")
        costs = _costs(instrument=instrument, commission_bps=sweep.commission_bps, slippage_bps=sweep.slippage_bps,
                       initial_cash=sweep.initial_cash)
        cache = IndicatorCache()
        for index, params in enumerate(sweep.param_sets):
            result = run_backtest(bars=bars, strategy=strat, params=params, costs=costs,
                                  annual_days=instrument.annual_days, cache=cache)
            yield instrument, index, result.metrics


def _pool_chunks(sweep: Sweep, instruments: list[Instrument], pool: SweepPool):
    """Chunks of parameter sets, instrument by instrument; each instrument's bars are read (and
    handed to the pool) only when its turn comes."""
    combos = len(sweep.param_sets)
    for instrument in instruments:
        bars = _load_bars(instrument=instrument, interval=sweep.interval, start=sweep.start, end=sweep.end,
                          field="instruments")
        key = f"i{instrument.pk}"
        pool.add_bars(key, bars)
        costs = _costs(instrument=instrument, commission_bps=sweep.commission_bps, slippage_bps=sweep.slippage_bps,
                       initial_cash=sweep.initial_cash)
        size = chunk_size(bars=len(bars), combos=combos, processes=pool.processes, chunk_work=conf.SWEEP_CHUNK_WORK)
        for first in range(0, combos, size):
            items = list(enumerate(sweep.param_sets[first:first + size], start=first))
            yield Chunk(key=key, costs=costs, annual_days=instrument.annual_days, items=items, meta=instrument)


def sweep_execute(sweep: Sweep, *, flush_seconds: float = 0.3, flush_rows: int = 200,
                  processes: int | None = None) -> None:
    """Job body: run every parameter set on every instrument, streaming results in batches.

    Large sweeps are computed by a pool of worker processes (`BACKTEST_SWEEP_PROCESSES`); results
    are numbered, stored and streamed in the order they finish. The pool is torn down when the
    body leaves, however it leaves (done, cancelled, failed).
    """
    strat = strategy_get(sweep.strategy)
    sweep.results.all().delete()  # a re-queued sweep starts over
    instruments = list(sweep.instruments.order_by("symbol"))
    if processes is None:
        bar_counts = sum(
            selectors.bars_queryset(instrument=i, interval=sweep.interval, start=sweep.start, end=sweep.end).count()
            for i in instruments
        )
        processes = sweep_processes(work=bar_counts * len(sweep.param_sets), combos=len(sweep.param_sets))
    seq = 0
    pending_rows: list[SweepResult] = []
    pending_events: list[tuple[str, dict]] = []
    last_flush = time.monotonic()
    best: tuple[float, dict] | None = None

    def flush() -> None:
        nonlocal pending_rows, pending_events, last_flush
        if pending_rows:
            with transaction.atomic():
                SweepResult.objects.bulk_create(pending_rows)
                Sweep.objects.filter(pk=sweep.pk).update(done=seq)
                job_events_add(job=sweep, events=pending_events)
        sweep.done = seq
        job_progress(job=sweep, fraction=seq / max(sweep.total, 1), message=f"{seq:,} of {sweep.total:,} backtests")
        pending_rows, pending_events = [], []
        last_flush = time.monotonic()
        job_raise_if_cancelled(job=sweep)  # also stops a sweep the recovery pass failed meanwhile

    where = f" in {processes} processes" if processes > 1 else ""
    job_progress(job=sweep, fraction=0.0, message=f"Starting {sweep.total:,} backtests{where}")
    pool = SweepPool(processes=processes, strategy=strat.key, tick=flush_seconds) if processes > 1 else None
    with pool or contextlib.nullcontext():
        stream = pool.run(_pool_chunks(sweep, instruments, pool)) if pool else _serial_results(sweep, instruments, strat)
        for item in stream:
            if item is not None:
                instrument, index, metrics = item
                params = sweep.param_sets[index]
                seq += 1
                pending_rows.append(SweepResult(sweep=sweep, seq=seq, instrument=instrument, params=params,
                                                metrics=metrics))
                pending_events.append(("result", {
                    "seq": seq, "instrument": instrument.symbol, "instrument_id": instrument.pk,
                    "params": params, "metrics": _live(metrics),
                }))
                sharpe = metrics.get("sharpe")
                if sharpe is not None and (best is None or sharpe > best[0]):
                    best = (sharpe, {"instrument": instrument.symbol, **params})
            if len(pending_rows) >= flush_rows or time.monotonic() - last_flush >= flush_seconds:
                flush()
        flush()
    summary = f"{seq:,} backtests done{where}"
    if best is not None:
        summary += f"; best Sharpe {best[0]:.2f}"
    job_succeed(job=sweep, message=summary, done=seq)


def sweep_result_open(*, owner, sweep: Sweep, result: SweepResult) -> tuple[BacktestRun, bool]:
    """A full backtest (equity, trades, charts) of one sweep result; deduplicated like any run."""
    return run_create(
        owner=owner, instrument=result.instrument, interval=sweep.interval, strategy=sweep.strategy,
        params=result.params, start=sweep.start, end=sweep.end, commission_bps=sweep.commission_bps,
        slippage_bps=sweep.slippage_bps, initial_cash=sweep.initial_cash,
    )
