"""Walk-forward rules, bar by bar and against independent computations (no database)."""

from dataclasses import replace

import numpy as np
import pytest

from backtest.engine import Bars, Costs, run_backtest
from backtest.strategies import Strategy, strategy_get
from backtest.sweep_grid import grid_expand
from backtest.synthetic import synthetic_bars
from backtest.walkforward import (
    Window, best_index, out_of_sample_run, walkforward_compute, window_run, windows_plan,
)


def spans(windows):
    return [(w.is_start, w.is_end, w.oos_start, w.oos_end, w.partial) for w in windows]


# --- window arithmetic ----------------------------------------------------------------------------


def test_rolling_windows_bar_by_bar():
    assert spans(windows_plan(bars=25, mode="rolling", in_sample=10, out_of_sample=5)) == [
        (0, 10, 10, 15, False), (5, 15, 15, 20, False), (10, 20, 20, 25, False)]


def test_anchored_windows_keep_their_start_and_grow():
    assert spans(windows_plan(bars=25, mode="anchored", in_sample=10, out_of_sample=5)) == [
        (0, 10, 10, 15, False), (0, 15, 15, 20, False), (0, 20, 20, 25, False)]


def test_last_partial_window_needs_two_out_of_sample_bars():
    # 27 bars: a fourth window with 2 of 5 out-of-sample bars is kept and marked partial
    assert spans(windows_plan(bars=27, mode="rolling", in_sample=10, out_of_sample=5))[-1] == (15, 25, 25, 27, True)
    # 26 bars: one bar left after the third window is not a window
    assert len(windows_plan(bars=26, mode="rolling", in_sample=10, out_of_sample=5)) == 3
    # too few bars for any window
    assert windows_plan(bars=11, mode="rolling", in_sample=10, out_of_sample=5) == []
    assert spans(windows_plan(bars=12, mode="anchored", in_sample=10, out_of_sample=5)) == [(0, 10, 10, 12, True)]


def test_a_step_longer_than_the_out_of_sample_part_leaves_bars_out():
    assert spans(windows_plan(bars=40, mode="rolling", in_sample=10, out_of_sample=5, step=8)) == [
        (0, 10, 10, 15, False), (8, 18, 18, 23, False), (16, 26, 26, 31, False), (24, 34, 34, 39, False)]


@pytest.mark.parametrize("kwargs, message", [
    ({"step": 4}, "at least the out-of-sample length"),
    ({"in_sample": 1}, "in-sample part needs at least 2"),
    ({"out_of_sample": 1, "step": 1}, "out-of-sample part needs at least 2"),
    ({"mode": "expanding"}, "Choose a window mode"),
])
def test_window_rules_are_refused_with_what_to_fix(kwargs, message):
    args = {"bars": 100, "mode": "rolling", "in_sample": 10, "out_of_sample": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        windows_plan(**args)


# --- the choice -----------------------------------------------------------------------------------


def test_best_index_skips_missing_values_and_keeps_the_first_of_ties():
    assert best_index([None, 1.0, float("nan"), 3.0, 3.0], "sharpe") == 3
    assert best_index([None, float("nan")], "sharpe") is None
    assert best_index([5.0, 2.0, 2.0], "volatility_ann_pct") == 1  # lower is better
    assert best_index([-30.0, -10.0], "max_drawdown_pct") == 1  # the shallower drawdown


@pytest.fixture(scope="module")
def frame():
    return synthetic_bars(n=3000, interval_seconds=3600, seed=17)


@pytest.fixture(scope="module")
def bars(frame):
    return Bars.from_frame(frame)


SMA = strategy_get("sma_cross")
COSTS = Costs(initial_cash=10_000, commission_bps=10, fractional=True)


@pytest.fixture(scope="module")
def param_sets():
    sets, _ = grid_expand(strategy=SMA, grid={"fast": [5, 10, 20], "slow": [30, 60, 120]}, sample=None, seed=0)
    return sets


@pytest.mark.parametrize("metric", ["sharpe", "return_pct", "max_drawdown_pct", "profit_factor"])
def test_choice_equals_a_brute_force_over_the_same_in_sample_slice(frame, bars, param_sets, metric):
    window = windows_plan(bars=len(bars), mode="rolling", in_sample=1000, out_of_sample=400)[2]
    result, _ = window_run(bars=bars, window=window, strategy=SMA, param_sets=param_sets, metric=metric,
                           costs=COSTS, annual_days=365)
    # Independently: the in-sample bars cut from the frame, one plain backtest per set, max by the metric.
    sample = Bars.from_frame(frame.iloc[window.is_start:window.is_end])
    scored = []
    for i, params in enumerate(param_sets):
        value = run_backtest(bars=sample, strategy=SMA, params=params, costs=COSTS, annual_days=365).metrics[metric]
        if value is not None:
            scored.append((value, -i))
    best_value, best_neg_index = max(scored)
    assert result.params == param_sets[-best_neg_index]
    assert result.in_sample[metric] == best_value


def _trading_from(strategy: Strategy, first_decision: int) -> Strategy:
    """The same strategy, but deciding only from bar `first_decision`'s close on (through the engine's warm-up)."""
    def signals(bars, params, cache):
        target, warmup = strategy.signals(bars, params, cache)
        return target, max(warmup, first_decision - 1)
    return replace(strategy, signals=signals)


@pytest.mark.parametrize("mode, strategy, grid, fractional", [
    ("rolling", "sma_cross", {"fast": [5, 10, 20], "slow": [30, 60, 120]}, True),
    ("anchored", "sma_cross", {"fast": [5, 10], "slow": [30, 60], "allow_short": [True]}, True),
    ("rolling", "rsi_reversion", {"period": [7, 14], "stop_loss": [0, 2]}, True),
    # whole units (stocks): each window buys whole units from the equity carried in
    ("rolling", "ema_cross", {"fast": [5, 12], "slow": [40], "allow_short": [True], "take_profit": [0, 3]}, False),
])
def test_stitched_equity_equals_each_chosen_set_run_on_its_window(frame, bars, mode, strategy, grid, fractional):
    strat = strategy_get(strategy)
    costs = replace(COSTS, fractional=fractional)
    sets, _ = grid_expand(strategy=strat, grid=grid, sample=None, seed=0)
    windows = windows_plan(bars=len(bars), mode=mode, in_sample=800, out_of_sample=450)
    result = walkforward_compute(bars=bars, windows=windows, strategy=strat, param_sets=sets, metric="sharpe",
                                 costs=costs, annual_days=365)
    assert len(result.windows) == len(windows) == 5 and windows[-1].partial
    cash, pieces, trades = 10_000.0, [], []
    for k, (window, chosen) in enumerate(zip(windows, result.windows)):
        assert chosen.params is not None and chosen.start_equity == pytest.approx(cash, rel=1e-12)
        # A plain backtest (the engine's public entry) over the window's bars, cut from the frame, with the
        # equity carried in, deciding from the last in-sample bar on, closing at the end.
        span = Bars.from_frame(frame.iloc[window.is_start:window.oos_end])
        anchor = window.oos_start - 1 - window.is_start
        ref = run_backtest(bars=span, strategy=_trading_from(strat, anchor),
                           params={**chosen.params, "finalize_trades": True},
                           costs=replace(costs, initial_cash=cash), annual_days=365)
        assert (ref.equity[:anchor + 1] == cash).all()  # nothing traded in the in-sample bars
        pieces.append(ref.equity[anchor + (1 if k else 0):])
        trades += [(t["entry_time"], t["exit_time"], t["size"], t["pnl"]) for t in ref.trade_dicts(span)]
        assert ref.open_trade is None
        cash = float(ref.equity[-1])
    expected = np.concatenate(pieces)
    assert len(result.equity) == len(expected) == 1 + sum(w.oos_end - w.oos_start for w in windows)
    np.testing.assert_allclose(result.equity, expected, rtol=1e-12)
    assert result.time[0] == bars.time[windows[0].oos_start - 1] and result.time[-1] == bars.time[-1]
    ours = [(t["entry_time"], t["exit_time"], t["size"], t["pnl"]) for t in result.trades]
    assert len(ours) == len(trades) > 0
    np.testing.assert_allclose(np.array(ours), np.array(trades), rtol=1e-12)
    assert result.metrics["equity_final"] == pytest.approx(cash, rel=1e-12)
    assert result.metrics["trades"] == len(trades)
    if not fractional:
        assert all(float(t["size"]).is_integer() for t in result.trades)


def test_buy_and_hold_windows_by_hand(bars):
    """Buy & hold in every window, no costs: each OOS part buys at its first open and sells at its last close."""
    strat = strategy_get("buy_hold")
    windows = windows_plan(bars=len(bars), mode="rolling", in_sample=500, out_of_sample=600)
    costs = Costs(initial_cash=1000.0, commission_bps=0, fractional=True)
    result = walkforward_compute(bars=bars, windows=windows, strategy=strat, param_sets=[{}], metric="return_pct",
                                 costs=costs, annual_days=365)
    expected, cash = [1000.0], 1000.0
    for w in windows:
        units = cash / bars.open[w.oos_start]
        expected += list(units * bars.close[w.oos_start:w.oos_end])
        cash = units * bars.close[w.oos_end - 1]
    np.testing.assert_allclose(result.equity, expected, rtol=1e-12)
    assert [(t["entry_bar"], t["exit_bar"], t["exit_reason"]) for t in result.trades] == [
        (w.oos_start - 499, w.oos_end - 500, "end") for w in windows]  # stitched bars count from bar 499
    assert windows[-1].partial and windows[-1].oos_end - windows[-1].oos_start == 100


def test_out_of_sample_indicators_are_warm_at_its_first_bar(bars):
    """SMA(5/200) needs 200 bars: run alone on 300 OOS bars it would trade late; here the in-sample bars warm it."""
    params = {"fast": 5, "slow": 200, "allow_short": True}
    oos = out_of_sample_run(bars=bars, strategy=SMA, params=params, costs=COSTS, annual_days=365,
                            context_start=0, oos_start=1000, oos_end=1300)
    assert oos.trade_dicts(bars)[0]["entry_bar"] == 1  # filled at the first out-of-sample open
    assert oos.equity[0] == COSTS.initial_cash and len(oos.equity) == 301


def test_a_window_never_sees_later_bars(frame, param_sets):
    windows = windows_plan(bars=3000, mode="rolling", in_sample=1000, out_of_sample=500)
    changed = frame.copy()
    changed.iloc[2000:, :4] *= 1.7  # bars after the second window
    args = dict(windows=windows[:2], strategy=SMA, param_sets=param_sets, metric="sharpe", costs=COSTS,
                annual_days=365)
    a = walkforward_compute(bars=Bars.from_frame(frame), **args)
    b = walkforward_compute(bars=Bars.from_frame(changed), **args)
    assert [w.params for w in a.windows] == [w.params for w in b.windows]
    np.testing.assert_array_equal(a.equity, b.equity)


def test_a_window_without_any_value_stays_in_cash(bars):
    window = Window(0, 0, 50, 50, 100)
    # SMA(400/2000) is never defined on 50 in-sample bars: no set has a Sharpe ratio
    result, equity = window_run(bars=bars, window=window, strategy=SMA, param_sets=[{"fast": 400, "slow": 2000,
                                "allow_short": False}], metric="sharpe", costs=COSTS, annual_days=365, cash=1234.0)
    assert result.params is None and (equity == 1234.0).all() and len(equity) == 51
