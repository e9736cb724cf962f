"""Writes of backtests: single runs (deduplicated through stored results) and sweeps."""

from __future__ import annotations

import contextlib
import time

from django.core.exceptions import ValidationError
from django.db import transaction

from backtest import conf, selectors, sweep_chunks
from backtest.engine import run_backtest
from backtest.indicators import IndicatorCache
from backtest.models import BacktestResult, BacktestRun, Instrument, Sweep, SweepResult
from backtest.results import result_key_compute, result_store
from backtest.run_inputs import bars_load_checked, costs_for, request_range_clean, strategy_clean, strategy_params_clean
from backtest.strategies import Strategy, strategy_get
from backtest.sweep_grid import grid_expand
from backtest.sweep_pool import Chunk, SweepPool, chunk_size, sweep_processes
from core.models import JobStatus
from core.services import (
    JobHandedOff, job_enqueue, job_events_add, job_progress, job_raise_if_cancelled, job_succeed,
)

#: Metrics sent live with each sweep result (all are stored).
LIVE_METRICS = (
    "return_pct", "buy_hold_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct",
    "trades", "win_rate_pct", "profit_factor", "expectancy_pct", "sqn", "exposure_pct", "volatility_ann_pct",
)


# --- single runs -------------------------------------------------------------------------


def backtest_run_create(
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
    strat = strategy_clean(strategy)
    clean = strategy_params_clean(strat, params)
    request_range_clean(interval=interval, start=start, end=end)
    run = BacktestRun(
        owner=owner, instrument=instrument, interval=interval, start=start, end=end, strategy=strat.key,
        params=clean, commission_bps=commission_bps, slippage_bps=slippage_bps, initial_cash=initial_cash,
    )
    run.full_clean(exclude=["owner", "result", "request_key"])
    bars = bars_load_checked(instrument=instrument, interval=interval, start=start, end=end)
    costs = costs_for(instrument=instrument, commission_bps=commission_bps, slippage_bps=slippage_bps,
                      initial_cash=initial_cash)
    key = result_key_compute(
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


def backtest_run_execute(run: BacktestRun) -> None:
    """Job body: compute (or reuse) the result of a run."""
    instrument = run.instrument
    job_progress(job=run, fraction=0.05, message="Loading bars")
    bars = bars_load_checked(instrument=instrument, interval=run.interval, start=run.start, end=run.end)
    costs = costs_for(instrument=instrument, commission_bps=run.commission_bps, slippage_bps=run.slippage_bps,
                      initial_cash=run.initial_cash)
    digest = selectors.bars_hash(bars)
    key = result_key_compute(instrument=instrument, interval=run.interval, bars_hash=digest, strategy=run.strategy,
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
    strat = strategy_clean(strategy)
    request_range_clean(interval=interval, start=start, end=end)
    instruments = list(dict.fromkeys(instruments))
    if not instruments:
        raise ValidationError({"instruments": "Choose at least one instrument."})
    if len(instruments) > conf.SWEEP_MAX_INSTRUMENTS:
        raise ValidationError({"instruments": f"At most {conf.SWEEP_MAX_INSTRUMENTS} instruments per sweep."})
    param_sets, dropped = grid_expand(strategy=strat, grid=grid, sample=sample, seed=seed)
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
        bars = bars_load_checked(instrument=instrument, interval=sweep.interval, start=sweep.start, end=sweep.end,
                                 field="instruments")
        costs = costs_for(instrument=instrument, commission_bps=sweep.commission_bps, slippage_bps=sweep.slippage_bps,
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
        bars = bars_load_checked(instrument=instrument, interval=sweep.interval, start=sweep.start, end=sweep.end,
                                 field="instruments")
        key = f"i{instrument.pk}"
        pool.add_bars(key, bars)
        costs = costs_for(instrument=instrument, commission_bps=sweep.commission_bps, slippage_bps=sweep.slippage_bps,
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
    body leaves, however it leaves (done, cancelled, failed). A sweep of at least
    `BACKTEST_SWEEP_SPLIT_MIN_WORK` bar-steps is split into chunk tasks that any worker on any host
    takes (`backtest.sweep_chunks`); they finish the sweep.
    """
    strat = strategy_get(sweep.strategy)
    sweep.results.all().delete()  # a re-queued sweep starts over
    Sweep.objects.filter(pk=sweep.pk).update(done=0)
    instruments = list(sweep.instruments.order_by("symbol"))
    bar_counts = {
        i.pk: selectors.bars_queryset(instrument=i, interval=sweep.interval, start=sweep.start, end=sweep.end).count()
        for i in instruments
    }
    work = sum(bar_counts.values()) * len(sweep.param_sets)
    if processes is None and work >= conf.SWEEP_SPLIT_MIN_WORK:
        sweep_chunks.sweep_chunks_enqueue(sweep=sweep, bar_counts=bar_counts)
        raise JobHandedOff()
    if processes is None:
        processes = sweep_processes(work=work, combos=len(sweep.param_sets))
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
                pending_rows.append(SweepResult(sweep=sweep, seq=seq, instrument=instrument, index=index,
                                                params=params, metrics=metrics))
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
    return backtest_run_create(
        owner=owner, instrument=result.instrument, interval=sweep.interval, strategy=sweep.strategy,
        params=result.params, start=sweep.start, end=sweep.end, commission_bps=sweep.commission_bps,
        slippage_bps=sweep.slippage_bps, initial_cash=sweep.initial_cash,
    )
