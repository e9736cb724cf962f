"""Walk-forward optimization: windows, the in-sample sweep, the out-of-sample run, the stitched curve.

The rules (shown beside the form and every result, see `RULES`):

- Windows are counted in **bars** of the loaded range, not in time: a bar count is exact whatever the
  market's hours (stocks have nights and weekends, crypto none), so "500 bars" is the same amount of
  evidence in every window. Window k starts at bar `k × step`:
  - rolling: in-sample `[k·step, k·step + IS)`;
  - anchored: in-sample `[0, k·step + IS)` (it grows, its start stays at the first bar);
  - out-of-sample (both): `[k·step + IS, k·step + IS + OOS)`, cut at the last bar. A last window
    whose out-of-sample part holds at least two bars but fewer than OOS is kept and marked partial;
    one with fewer than two is not made.
  - The step is at least the OOS length, so out-of-sample parts never overlap; at the OOS length
    (the default) they adjoin, and the stitched curve covers every bar after the first in-sample part.
- In each window every parameter set is backtested on the in-sample bars alone (a fresh backtest of
  that slice: indicators warm up inside it, a trade open at its end is handled by the run's own
  `finalize_trades`). The best by the chosen metric wins; a value that is not a number never wins;
  ties go to the first parameter set in grid order. When no set has a value, the window stays in cash.
- The chosen parameters then trade the out-of-sample bars. Their indicators are computed over the
  window's in-sample and out-of-sample bars together, so they are warm when the OOS part begins (the
  in-sample bars are all before it: no look-ahead); the first decision is taken on the last in-sample
  bar's close and fills at the first OOS bar's open.
- At the OOS end the position is **closed** at the last OOS bar's close (exit reason `end`, commission
  and slippage charged), so every OOS trade is counted and the next window starts flat. Each window
  starts with the equity the previous one ended with (whole units for stocks are bought from it), so
  the stitched curve compounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from backtest import indicators as ind
from backtest import metrics as metrics_mod
from backtest.engine import Bars, Costs, EngineResult, TradeArrays, run_backtest, simulate
from backtest.fills import Rules
from backtest.indicators import IndicatorCache
from backtest.metrics import METRICS
from backtest.strategies import Strategy, first_valid

MODES = ("rolling", "anchored")
#: Metrics a walk-forward may choose its parameters by (higher or lower is better as METRICS says).
SELECTION_METRICS = (
    "sharpe", "sortino", "calmar", "return_pct", "return_ann_pct", "cagr_pct", "profit_factor", "sqn",
    "expectancy_pct", "win_rate_pct", "max_drawdown_pct", "equity_final",
)
#: Metrics shown side by side for the in-sample and out-of-sample parts of each window.
COMPARED_METRICS = ("return_ann_pct", "sharpe", "max_drawdown_pct", "win_rate_pct", "trades", "return_pct")

RULES = [
    "Windows are counted in bars of the chosen range (not in time), so every window holds the same "
    "number of bars whatever the market's hours.",
    "Rolling: the in-sample part is the IS bars before the out-of-sample part. Anchored: it starts at the "
    "first bar and grows by the step each window.",
    "Window k's out-of-sample part is the OOS bars from bar k × step + IS. The step is at least the OOS "
    "length, so out-of-sample parts never overlap. A last window with fewer OOS bars (at least two) is kept "
    "and marked partial.",
    "In-sample: every parameter set is backtested on the in-sample bars alone; the best by the chosen "
    "metric wins (ties: the first in grid order; a missing value never wins).",
    "Out-of-sample: the chosen set trades the OOS bars with its indicators already warm from the in-sample "
    "bars; its first decision is on the last in-sample close, filled at the first OOS open.",
    "At the end of each OOS part the position is closed at the last close (reason \"end\"); the next "
    "window starts flat with the equity this one ended with, so the stitched curve compounds.",
]


@dataclass(frozen=True)
class Window:
    index: int
    is_start: int  # bar indices into the loaded range, end exclusive
    is_end: int
    oos_start: int
    oos_end: int
    partial: bool = False

    def as_dict(self) -> dict:
        return {"index": self.index, "is_start": self.is_start, "is_end": self.is_end,
                "oos_start": self.oos_start, "oos_end": self.oos_end, "partial": self.partial}


def windows_plan(*, bars: int, mode: str, in_sample: int, out_of_sample: int, step: int | None = None) -> list[Window]:
    """The windows over `bars` bars (see the module's rules); raises ValueError with what to fix."""
    step = out_of_sample if step is None else step
    if mode not in MODES:
        raise ValueError(f"Choose a window mode: {', '.join(MODES)}.")
    if in_sample < 2:
        raise ValueError("The in-sample part needs at least 2 bars.")
    if out_of_sample < 2:
        raise ValueError("The out-of-sample part needs at least 2 bars.")
    if step < out_of_sample:
        raise ValueError("The step must be at least the out-of-sample length, so out-of-sample parts never overlap.")
    windows = []
    k = 0
    while True:
        oos_start = k * step + in_sample
        if oos_start + 2 > bars:
            break
        oos_end = min(oos_start + out_of_sample, bars)
        is_start = 0 if mode == "anchored" else oos_start - in_sample
        windows.append(Window(k, is_start, oos_start, oos_start, oos_end, partial=oos_end - oos_start < out_of_sample))
        k += 1
    return windows


def bars_slice(bars: Bars, start: int, end: int) -> Bars:
    return Bars(*(getattr(bars, f)[start:end] for f in ("time", "open", "high", "low", "close", "volume")))


def metric_better(metric: str) -> Callable[[float, float], bool]:
    higher = METRICS[metric][2]
    return (lambda a, b: a > b) if higher else (lambda a, b: a < b)


def best_index(values: list, metric: str) -> int | None:
    """The index of the best finite value (first on ties), None when none is a number."""
    better = metric_better(metric)
    best = None
    for i, value in enumerate(values):
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if best is None or better(value, values[best]):
            best = i
    return best


def in_sample_sweep(*, bars: Bars, strategy: Strategy, param_sets: list[dict], costs: Costs, annual_days: int,
                    each: Callable[[int], None] | None = None) -> list[dict]:
    """Metrics of every parameter set on these bars, in order (the engine, in this process)."""
    cache = IndicatorCache()
    out = []
    for i, params in enumerate(param_sets):
        out.append(run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=annual_days,
                                cache=cache).metrics)
        if each is not None:
            each(i)
    return out


def oos_params(params: dict) -> dict:
    """The parameters as the out-of-sample part trades them: closed at its end."""
    return {**params, "finalize_trades": True}


def out_of_sample_run(*, bars: Bars, strategy: Strategy, params: dict, costs: Costs, annual_days: int,
                      context_start: int, oos_start: int, oos_end: int) -> EngineResult:
    """The chosen parameters over `[context_start, oos_end)`, deciding from the close of bar
    `oos_start - 1` (the last in-sample bar, "the anchor") on. The result (equity, trades, metrics) is of
    the bars `[oos_start - 1, oos_end)`: the anchor, where equity is still the starting cash, then the
    out-of-sample bars; bar indices count from the anchor."""
    ctx = bars_slice(bars, context_start, oos_end)
    anchor = oos_start - 1 - context_start
    if anchor < 0:
        raise ValueError("An out-of-sample part needs at least one bar before it.")
    params = oos_params(params)
    cache = IndicatorCache()
    target, warmup = strategy.signals(ctx, params, cache)
    rules = Rules.from_params(params)
    atr = None
    if rules.uses_atr:
        atr = cache.get(("atr", rules.atr_period), lambda: ind.atr(ctx.high, ctx.low, ctx.close, rules.atr_period))
        warmup = max(warmup, first_valid(atr))
    # held_positions takes the first decision on the close of bar warmup + 1: here the anchor at the earliest.
    warmup = max(warmup, anchor - 1)
    full = simulate(ctx, target, warmup, costs, rules, atr)
    part = bars_slice(bars, oos_start - 1, oos_end)
    t = full.trades
    trades = replace(t, entry_bar=t.entry_bar - anchor, exit_bar=t.exit_bar - anchor)  # none enters before
    equity = full.equity[anchor:].copy()
    result = EngineResult(equity=equity, trades=trades, open_trade=None, warmup=max(0, full.warmup - anchor))
    result.metrics = metrics_mod.compute_metrics(
        time=part.time, equity=equity, close=part.close, trades=trades, warmup=0, annual_days=annual_days,
        open_trade=None,
    )
    return result


@dataclass
class WindowResult:
    window: Window
    params: dict | None
    in_sample: dict  # metrics of the chosen set on the in-sample bars ({} when none was chosen)
    out_of_sample: dict  # metrics of the out-of-sample run ({} when none was chosen)
    start_equity: float
    trades: list[dict] = field(default_factory=list)

    def as_dict(self, time: np.ndarray) -> dict:
        w = self.window
        return {
            **w.as_dict(),
            "is_first": int(time[w.is_start]), "is_last": int(time[w.is_end - 1]),
            "oos_first": int(time[w.oos_start]), "oos_last": int(time[w.oos_end - 1]),
            "params": self.params, "start_equity": self.start_equity,
            "in_sample": {k: self.in_sample.get(k) for k in COMPARED_METRICS},
            "out_of_sample": {k: self.out_of_sample.get(k) for k in COMPARED_METRICS},
            "trades": self.trades,
        }


def window_run(*, bars: Bars, window: Window, strategy: Strategy, param_sets: list[dict], metric: str,
               costs: Costs, annual_days: int, cash: float | None = None,
               each: Callable[[int], None] | None = None) -> tuple[WindowResult, np.ndarray]:
    """One window: the in-sample sweep (with the run's initial cash), the choice, the out-of-sample run
    (starting with `cash`, the equity carried in). Answers the window's result and its out-of-sample
    equity (flat at `cash` when no set was chosen)."""
    cash = costs.initial_cash if cash is None else float(cash)
    sample = bars_slice(bars, window.is_start, window.is_end)
    found = in_sample_sweep(bars=sample, strategy=strategy, param_sets=param_sets, costs=costs,
                            annual_days=annual_days, each=each)
    best = best_index([m.get(metric) for m in found], metric)
    if best is None or cash <= 0:
        equity = np.full(window.oos_end - window.oos_start + 1, max(cash, 0.0))
        return WindowResult(window, None, {}, {}, cash), equity
    params = param_sets[best]
    oos = out_of_sample_run(bars=bars, strategy=strategy, params=params, costs=costs_with_cash(costs, cash),
                            annual_days=annual_days, context_start=window.is_start, oos_start=window.oos_start,
                            oos_end=window.oos_end)
    trades = oos.trade_dicts(bars_slice(bars, window.oos_start - 1, window.oos_end))
    return WindowResult(window, params, found[best], oos.metrics, cash, trades), oos.equity


@dataclass
class WalkForwardResult:
    windows: list[WindowResult]
    time: np.ndarray  # the stitched out-of-sample bars
    close: np.ndarray
    equity: np.ndarray
    trades: list[dict]  # bar indices into the stitched bars
    metrics: dict


def walkforward_compute(*, bars: Bars, windows: list[Window], strategy: Strategy, param_sets: list[dict],
                        metric: str, costs: Costs, annual_days: int,
                        each: Callable[[int, int], None] | None = None,
                        on_window: Callable[[WindowResult], None] | None = None) -> WalkForwardResult:
    """Every window in order, each out-of-sample part starting with the equity the previous one ended
    with; `each(window, index)` after every in-sample backtest, `on_window(result)` after every window."""
    results, trades = [], []
    keep: list[np.ndarray] = []
    curves: list[np.ndarray] = []
    cash, last_bar, offset = float(costs.initial_cash), -1, 0
    for window in windows:
        step = (lambda i, k=window.index: each(k, i)) if each is not None else None
        result, equity = window_run(bars=bars, window=window, strategy=strategy, param_sets=param_sets,
                                    metric=metric, costs=costs, annual_days=annual_days, cash=cash, each=step)
        results.append(result)
        # The anchor is the previous window's last bar when the parts adjoin: same bar, same equity.
        skip = 1 if window.oos_start - 1 == last_bar else 0
        keep.append(np.arange(window.oos_start - 1 + skip, window.oos_end))
        curves.append(equity[skip:])
        for t in result.trades:
            trades.append({**t, "window": window.index, "entry_bar": t["entry_bar"] + offset - skip,
                           "exit_bar": t["exit_bar"] + offset - skip})
        offset += len(equity) - skip
        cash, last_bar = float(equity[-1]), window.oos_end - 1
        if on_window is not None:
            on_window(result)
    index = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    time, close = bars.time[index], bars.close[index]
    equity = np.concatenate(curves) if curves else np.zeros(0)
    metrics = {}
    if len(equity) >= 2 and equity[0] > 0:
        metrics = stitched_metrics(time=time, equity=equity, close=close, trades=trades, annual_days=annual_days)
    return WalkForwardResult(results, time, close, equity, trades, metrics)


def stitched_metrics(*, time: np.ndarray, equity: np.ndarray, close: np.ndarray, trades: list[dict],
                     annual_days: int) -> dict:
    """Metrics of the stitched out-of-sample curve (its trades are the windows' trades, all closed)."""
    def column(name, dtype=float):
        return np.asarray([t[name] for t in trades], dtype=dtype)

    arrays = TradeArrays(
        side=np.asarray([1.0 if t["side"] == "long" else -1.0 for t in trades]), size=column("size"),
        entry_bar=column("entry_bar", np.int64), exit_bar=column("exit_bar", np.int64),
        entry_price=column("entry_price"), exit_price=column("exit_price"), pnl=column("pnl"),
        return_pct=column("return_pct") / 100, commission=column("commission"),
        reason=np.zeros(len(trades), dtype=np.int64),
    )
    return metrics_mod.compute_metrics(time=time, equity=equity, close=close, trades=arrays, warmup=0,
                                       annual_days=annual_days, open_trade=None)


def costs_with_cash(costs: Costs, cash: float) -> Costs:
    return replace(costs, initial_cash=float(cash))
