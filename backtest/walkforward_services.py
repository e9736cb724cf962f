"""Writes of walk-forward optimizations: the request (checked whole before it is queued) and the job body.

The rules of the windows, the choice and the out-of-sample runs are in `backtest.walkforward`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from backtest import conf, selectors
from backtest.metrics import METRICS
from backtest.models import Instrument, WalkForward
from backtest.run_inputs import bars_load_checked, costs_for, request_range_clean, strategy_clean
from backtest.strategies import strategy_get
from backtest.sweep_grid import grid_expand
from backtest.walkforward import MODES, SELECTION_METRICS, Window, WindowResult, walkforward_compute, windows_plan
from core.jobkit import JobReporter
from core.services import job_enqueue, job_events_add, job_succeed


def _windows_checked(*, bars: int, mode: str, in_sample: int, out_of_sample: int, step: int,
                     combos: int) -> list[Window]:
    try:
        windows = windows_plan(bars=bars, mode=mode, in_sample=in_sample, out_of_sample=out_of_sample, step=step)
    except ValueError as exc:
        raise ValidationError({"step_bars" if "step" in str(exc) else "in_sample_bars": str(exc)}) from None
    if not windows:
        raise ValidationError({"in_sample_bars": (
            f"The range holds {bars:,} bars: too few for one window of {in_sample:,} in-sample bars and at least "
            "two out-of-sample bars. Shorten the parts or widen the range.")})
    if len(windows) > conf.WALKFORWARD_MAX_WINDOWS:
        raise ValidationError({"step_bars": f"These parts make {len(windows):,} windows; the limit is "
                                            f"{conf.WALKFORWARD_MAX_WINDOWS:,}. Lengthen the step."})
    work = sum(w.is_end - w.is_start for w in windows) * combos
    if work > conf.WALKFORWARD_MAX_WORK:
        raise ValidationError({"grid": f"{len(windows):,} windows × {combos:,} parameter sets over their in-sample "
                                       f"bars are {work:,} bar-steps; the limit is {conf.WALKFORWARD_MAX_WORK:,}. "
                                       "Narrow the grid, shorten the in-sample part or use fewer windows."})
    return windows


def walkforward_create(
    *,
    owner,
    instrument: Instrument,
    interval: str,
    strategy: str,
    grid: dict,
    in_sample_bars: int,
    out_of_sample_bars: int,
    step_bars: int | None = None,
    mode: str = "rolling",
    metric: str = "sharpe",
    sample: int | None = None,
    seed: int = 0,
    start=None,
    end=None,
    commission_bps: float = 10.0,
    slippage_bps: float = 0.0,
    initial_cash: float = 10_000.0,
) -> WalkForward:
    """Request a walk-forward; every rule is checked against the bars stored now, then a job runs it."""
    strat = strategy_clean(strategy)
    request_range_clean(interval=interval, start=start, end=end)
    if mode not in MODES:
        raise ValidationError({"mode": f"Choose one of {', '.join(MODES)}."})
    if metric not in SELECTION_METRICS:
        raise ValidationError({"metric": f"Choose one of {', '.join(SELECTION_METRICS)}."})
    step_bars = out_of_sample_bars if step_bars is None else step_bars
    param_sets, dropped = grid_expand(strategy=strat, grid=grid, sample=sample, seed=seed)
    count = selectors.bars_queryset(instrument=instrument, interval=interval, start=start, end=end).count()
    if count > conf.MAX_BARS:
        raise ValidationError({"start": f"The range holds more than {conf.MAX_BARS:,} bars; narrow it."})
    windows = _windows_checked(bars=count, mode=mode, in_sample=in_sample_bars, out_of_sample=out_of_sample_bars,
                               step=step_bars, combos=len(param_sets))
    walkforward = WalkForward(
        owner=owner, instrument=instrument, interval=interval, start=start, end=end, strategy=strat.key, grid=grid,
        param_sets=param_sets, combos=len(param_sets), skipped=dropped, mode=mode, in_sample_bars=in_sample_bars,
        out_of_sample_bars=out_of_sample_bars, step_bars=step_bars, metric=metric, window_count=len(windows),
        commission_bps=commission_bps, slippage_bps=slippage_bps, initial_cash=initial_cash,
    )
    walkforward.full_clean(exclude=["owner"])
    with transaction.atomic():
        walkforward.save()
        job_enqueue(job=walkforward)
    return walkforward


def _window_event(result: WindowResult, time) -> dict:
    data = result.as_dict(time)
    data.pop("trades")
    data["trades"] = len(result.trades)
    return data


def walkforward_execute(walkforward: WalkForward, *, check_seconds: float = 0.2) -> None:
    """Job body: every window in order (live: progress per in-sample backtest, one `window` event per
    window); stops at the owner's cancel within `check_seconds` (and after every window)."""
    strat = strategy_get(walkforward.strategy)
    instrument = walkforward.instrument
    reporter = JobReporter(walkforward, check_seconds=check_seconds)
    bars = bars_load_checked(instrument=instrument, interval=walkforward.interval, start=walkforward.start,
                             end=walkforward.end)
    windows = _windows_checked(bars=len(bars), mode=walkforward.mode, in_sample=walkforward.in_sample_bars,
                               out_of_sample=walkforward.out_of_sample_bars, step=walkforward.step_bars,
                               combos=walkforward.combos)
    costs = costs_for(instrument=instrument, commission_bps=walkforward.commission_bps,
                      slippage_bps=walkforward.slippage_bps, initial_cash=walkforward.initial_cash)
    combos, count = walkforward.combos, len(windows)
    total = combos * count
    reporter.progress(fraction=0.0, force=True, window_count=count, windows_done=0, bar_count=len(bars),
                      message=f"{count} windows × {combos:,} parameter sets on {len(bars):,} bars")

    def each(window: int, index: int) -> None:
        done = window * combos + index + 1
        reporter.progress(fraction=done / total,
                          message=f"Window {window + 1} of {count}: in-sample backtest {index + 1:,} of {combos:,}")
        reporter.raise_if_stopped()

    def on_window(result: WindowResult) -> None:
        job_events_add(job=walkforward, events=[("window", _window_event(result, bars.time))])
        reporter.progress(fraction=(result.window.index + 1) * combos / total, force=True,
                          windows_done=result.window.index + 1,
                          message=f"Window {result.window.index + 1} of {count} done")
        reporter.raise_if_stopped(fresh=True)

    result = walkforward_compute(bars=bars, windows=windows, strategy=strat, param_sets=walkforward.param_sets,
                                 metric=walkforward.metric, costs=costs, annual_days=instrument.annual_days,
                                 each=each, on_window=on_window)
    rows = [w.as_dict(bars.time) for w in result.windows]
    m = result.metrics
    label = METRICS[walkforward.metric][0]
    summary = f"{count} windows by {label}"
    if m:
        summary += f"; out-of-sample return {m['return_pct']:.2f}%, {len(result.trades)} trades"
    job_succeed(
        job=walkforward, message=summary, windows=rows, metrics=m, windows_done=count, bar_count=len(bars),
        equity={"t": result.time.tolist(), "equity": [round(float(x), 6) for x in result.equity],
                "close": result.close.tolist()},
    )
