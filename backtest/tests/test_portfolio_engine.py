"""The portfolio engine bar by bar on hand-made bars, and against a plain per-bar loop on random data."""

import math

import numpy as np
import pandas as pd
import pytest

from backtest.engine import Bars, Costs
from backtest.portfolio_engine import Aligned, PortfolioRules, run_portfolio, trade_dicts
from backtest.portfolio_weights import rebalance_bars, volatility_known, weights_matrix
from backtest.strategies import STRATEGIES, Strategy, params_clean

DAY = 86400
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC, a Monday


def bars_of(times, opens, closes=None, highs=None, lows=None) -> Bars:
    opens = np.asarray(opens, dtype=float)
    closes = opens if closes is None else np.asarray(closes, dtype=float)
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype=float)
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype=float)
    return Bars(np.asarray(times, dtype=np.int64), opens, highs, lows, closes, np.zeros(len(opens)))


def days(*offsets):
    return [T0 + d * DAY for d in offsets]


def scripted(targets: dict[int, list[float]]) -> Strategy:
    """A strategy whose target positions are given per instrument (told apart by their bar count)."""
    def signals(bars, params, cache):
        return np.asarray(targets[len(bars)], dtype=float), 0
    return Strategy(key="scripted", name="Scripted", description="", params=(), signals=signals)


def run(bars, *, rules=PortfolioRules(), cash=1000.0, commission=0.0, slippage=0.0, strategy=None, params=None,
        fractional=None):
    return run_portfolio(bars=bars, symbols=[f"S{i}" for i in range(len(bars))],
                         fractional=fractional or [True] * len(bars), rules=rules,
                         costs=Costs(initial_cash=cash, commission_bps=commission, slippage_bps=slippage),
                         annual_days=365, strategy=strategy, params=params or {})


# --- per-instrument signals ------------------------------------------------------------------------


def test_equal_split_of_shared_cash_and_its_reuse_after_an_exit():
    # Decisions start on bar 1's close (warm-up 0) and fill at the next open.
    # A (6 bars): long decided on bars 1-2, so held during bars 2-3, sold at bar 4's open.
    # B (7 bars, one more so the scripted strategy tells them apart): long decided on bar 4, held from bar 5.
    a = bars_of(days(0, 1, 2, 3, 4, 5), [10, 10, 10, 12, 12, 12])
    b = bars_of(days(0, 1, 2, 3, 4, 5, 6), [20, 20, 20, 20, 20, 20, 22])
    strategy = scripted({6: [1, 1, 1, 0, 0, 0], 7: [0, 0, 0, 0, 1, 1, 1]})
    result = run([a, b], strategy=strategy)
    # bar 2: A takes cash × 0.5 / (0.5 + 0.5) = 500 → 50 units at 10
    # bar 4: A sold at 12 → cash 500 + 600 = 1100
    # bar 5: B takes 1100 × 0.5 / 1.0 = 550 → 27.5 units at 20 (the pool includes A's profit)
    assert result.units[0].tolist() == pytest.approx([0, 0, 50, 50, 0, 0, 0], rel=1e-12)
    assert result.units[1].tolist() == pytest.approx([0, 0, 0, 0, 0, 27.5, 27.5], rel=1e-12)
    assert result.cash.tolist() == pytest.approx([1000, 1000, 500, 500, 1100, 550, 550], rel=1e-12)
    # equity at each close; A has no bar at day 6: valued at its last close (12) while flat anyway
    assert result.equity.tolist() == pytest.approx([1000, 1000, 1000, 1100, 1100, 1100, 1155])
    assert [(t["symbol"], t["entry_price"], t["exit_price"]) for t in result.trades] == [("S0", 10, 12)]
    assert result.trades[0]["pnl"] == pytest.approx(100)
    assert result.open_positions[0]["symbol"] == "S1" and result.open_positions[0]["size"] == pytest.approx(27.5)
    assert [c["pnl"] for c in result.contributions] == pytest.approx([100, 55])
    assert result.metrics["equity_final"] == pytest.approx(1155)
    assert result.metrics["trades"] == 1


def test_second_entry_on_the_same_bar_gets_the_same_share_and_commission_is_paid():
    a = bars_of(days(0, 1, 2), [10, 10, 10])
    b = bars_of(days(0, 1, 2, 3), [20, 20, 20, 20])
    strategy = scripted({3: [1, 1, 1], 4: [1, 1, 1, 1]})
    result = run([a, b], strategy=strategy, commission=100)  # 1 %
    # A: 1000 × 0.5 / 1.0 = 500 of budget → 500 / (10 × 1.01) units; B: what is left, all of it (only B flat)
    units_a = 500 * (1 - 2**-52) / 10.1
    cash_after_a = 1000 - units_a * 10 * 1.01
    units_b = cash_after_a * (1 - 2**-52) / 20.2
    assert result.units[0, 2] == pytest.approx(units_a, rel=1e-12)
    assert result.units[1, 2] == pytest.approx(units_b, rel=1e-12)
    assert units_a * 10 == pytest.approx(units_b * 20, rel=1e-9)  # the same value: an equal split
    assert result.metrics["commissions"] == pytest.approx(0.01 * (units_a * 10 + units_b * 20))


def test_a_missing_bar_is_not_traded_and_valued_at_the_last_close():
    # B has no bar at day 2: its entry decided on day 1's close fills at its next bar (day 3), never at day 2.
    a = bars_of(days(0, 1, 2, 3, 4), [10, 10, 10, 10, 10])
    b = bars_of(days(0, 1, 3, 4), [20, 21, 30, 30], closes=[20, 25, 30, 30])
    strategy = scripted({5: [0, 0, 0, 0, 0], 4: [0, 1, 1, 1]})
    result = run([a, b], strategy=strategy)
    aligned = Aligned.of([a, b])
    assert aligned.time.tolist() == days(0, 1, 2, 3, 4)
    assert aligned.has_bar[1].tolist() == [True, True, False, True, True]
    assert aligned.close[1].tolist() == [20, 25, 25, 30, 30]  # carried for valuation only
    entry = result.trades[0] if result.trades else result.open_positions[0]
    assert entry["entry_bar"] == 3 and entry["entry_price"] == 30  # day 3's open, not a carried price
    assert result.units[1].tolist() == pytest.approx([0, 0, 0, 500 / 30, 500 / 30], rel=1e-12)


def test_a_stop_closes_inside_the_bar_and_the_position_waits_for_a_fresh_signal():
    # Long from bar 2 at 100 with a 5 % stop; bar 3 trades down to 90: stopped at 95.
    a = bars_of(days(0, 1, 2, 3, 4, 5), [100, 100, 100, 99, 99, 99], closes=[100, 100, 100, 92, 99, 99],
                lows=[100, 100, 100, 90, 99, 99])
    b = bars_of(days(0, 1, 2, 3, 4, 5, 6), [50] * 7)
    strategy = scripted({6: [1, 1, 1, 1, 1, 1], 7: [0] * 7})
    result = run([a, b], strategy=strategy, params={"stop_loss": 5.0})
    (trade,) = result.trades
    assert (trade["exit_bar"], trade["exit_price"], trade["reason"]) == (3, 95, 1)
    assert trade_dicts(result)[0]["exit_reason"] == "stop"
    # not re-entered while the signal still holds
    assert result.units[0].tolist() == pytest.approx([0, 0, 5, 0, 0, 0, 0], rel=1e-12)


def test_long_only_a_short_signal_stays_flat():
    a = bars_of(days(0, 1, 2), [10, 10, 10])
    b = bars_of(days(0, 1, 2, 3), [10, 10, 10, 10])
    result = run([a, b], strategy=scripted({3: [-1, -1, -1], 4: [-1, -1, -1, -1]}))
    assert not result.units.any() and result.equity.tolist() == [1000] * 4


# --- rebalanced allocation -------------------------------------------------------------------------


def test_rebalance_bars_are_the_first_of_each_month_and_the_second_bar():
    times = [pd.Timestamp(s, tz="UTC").value // 10**9 for s in
             ("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2024-03-04", "2024-03-05")]
    assert rebalance_bars(np.asarray(times), "monthly").tolist() == [1, 2, 4]
    weekly = np.asarray(days(0, 1, 6, 7, 8, 14))  # Mon, Tue, Sun, Mon, Tue, Mon
    assert rebalance_bars(weekly, "weekly").tolist() == [1, 3, 5]


def test_monthly_rebalance_trades_back_to_equal_weights_with_commission():
    times = [pd.Timestamp(s, tz="UTC").value // 10**9 for s in
             ("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02")]
    a = bars_of(times, [10, 10, 20, 20])
    b = bars_of(times, [10, 10, 10, 10])
    rate = 0.001
    result = run([a, b], rules=PortfolioRules(mode="rebalance", rebalance="monthly"), commission=10)
    # bar 1 (first allocation): value 1000 → targets 50 and 50 units; A first (ties by instrument), B limited by cash
    a1 = 50.0
    cash = 1000 - a1 * 10 * (1 + rate)
    b1 = cash * (1 - 2**-52) / (10 + (1 - 2**-52) * 10 * rate / (1 - 2**-52))
    cash -= b1 * 10 * (1 + rate)
    assert result.units[:, 1].tolist() == pytest.approx([a1, b1], rel=1e-12)
    # bar 2 (February): value at the open = cash + 50 × 20 + b1 × 10; sell A down, then buy B with what came in
    value = cash + a1 * 20 + b1 * 10
    sell = a1 - value * 0.5 / 20
    cash += sell * 20 * (1 - rate)
    buy = min(value * 0.5 / 10 - b1, cash * (1 - 2**-52) / (10 * (1 + rate)))
    cash -= buy * 10 * (1 + rate)
    assert result.units[:, 2].tolist() == pytest.approx([a1 - sell, b1 + buy], rel=1e-12)
    assert result.cash[2] == pytest.approx(cash, abs=1e-9)
    commission = rate * (a1 * 10 + b1 * 10 + sell * 20 + buy * 10)
    assert result.metrics["commissions"] == pytest.approx(commission, rel=1e-12)
    assert result.metrics["equity_final"] == pytest.approx(cash + (a1 - sell) * 20 + (b1 + buy) * 10, rel=1e-12)
    assert result.orders == 4 and result.metrics["trades"] == 0


def test_rebalance_skips_an_instrument_without_a_bar_and_values_it_at_its_last_close():
    times = [pd.Timestamp(s, tz="UTC").value // 10**9 for s in
             ("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02")]
    a = bars_of(times, [10, 10, 20, 20])
    b = bars_of([times[0], times[1], times[3]], [10, 10, 12], closes=[10, 11, 12])  # no bar on Feb 1
    result = run([a, b], rules=PortfolioRules(mode="rebalance"))
    assert result.units[1, 1] == result.units[1, 2]  # B not traded on Feb 1
    # A traded to half of the value with B at its last close (11)
    value = result.cash[1] + result.units[0, 1] * 20 + result.units[1, 1] * 11
    assert result.units[0, 2] == pytest.approx(value * 0.5 / 20, rel=1e-12)


def test_inverse_volatility_weights_use_only_returns_known_before_the_bar():
    n = 12
    steps_a = 0.01 * (-1) ** np.arange(n)
    a = bars_of(days(*range(n)), 100 * np.exp(np.cumsum(steps_a)))
    b = bars_of(days(*range(n)), 100 * np.exp(np.cumsum(2 * steps_a)))
    rules = PortfolioRules(weighting="inverse_vol", vol_window=4)
    w = weights_matrix(aligned=Aligned.of([a, b]), bars=[a, b], rules=rules)
    assert w[:, :3].tolist() == [[0.5] * 3] * 2  # fewer than two returns known yet: equal
    assert w[:, 6] == pytest.approx([2 / 3, 1 / 3])  # B twice as volatile: half the weight
    vol = volatility_known(a, 4)
    closes = a.close
    expected = np.std(np.diff(np.log(closes[2:7])), ddof=1)  # the four returns up to bar 5's close
    assert vol[7] == pytest.approx(expected) and math.isnan(vol[2])


# --- against a plain per-bar loop ------------------------------------------------------------------


def _random_bars(rng, n, missing):
    times = np.asarray(days(*range(n)))
    steps = rng.normal(0, 0.02, n)
    close = 50 * np.exp(np.cumsum(steps))
    open_ = np.r_[50, close[:-1]] * np.exp(rng.normal(0, 0.003, n))
    keep = rng.random(n) > missing
    keep[:2] = True
    return bars_of(times[keep], open_[keep], close[keep])


def _plain_signals_loop(bars, fast, slow, cash, rate, inverse_vol, window):
    """Each instrument's SMA cross on its own bars (pandas), then one cash balance walked bar by bar."""
    k = len(bars)
    union = sorted(set().union(*(b.time.tolist() for b in bars)))
    own = [{int(t): j for j, t in enumerate(b.time)} for b in bars]
    held = []
    vols = []
    for b in bars:
        c = pd.Series(b.close)
        long = (c.rolling(fast).mean() > c.rolling(slow).mean()).to_numpy()
        h = np.zeros(len(b))
        for j in range(1, len(b)):
            h[j] = float(long[j - 1]) if j - 1 >= slow else 0.0  # decisions from the bar after warm-up
        held.append(h)
        r = np.log(c).diff()
        vols.append(r.rolling(window, min_periods=2).std().shift(1).to_numpy())
    units = [0.0] * k
    last_close = [math.nan] * k
    last_vol = [math.nan] * k
    equity = []
    for t in union:
        here = [i for i in range(k) if t in own[i]]
        for i in here:
            last_vol[i] = vols[i][own[i][t]]
        if inverse_vol and all(np.isfinite(v) and v > 0 for v in last_vol):
            w = [1 / v for v in last_vol]
        else:
            w = [1.0] * k
        for i in here:  # exits at the open
            j = own[i][t]
            if units[i] and held[i][j] == 0 and held[i][j - 1] == 1:
                cash += units[i] * bars[i].open[j] * (1 - rate)
                units[i] = 0.0
        for i in here:  # then entries, in instrument order
            j = own[i][t]
            if held[i][j] == 1 and (j == 0 or held[i][j - 1] == 0) and not units[i]:
                free = sum(w[x] for x in range(k) if not units[x])
                price = bars[i].open[j]
                units[i] = cash * w[i] / free / (price * (1 + rate))
                cash -= units[i] * price * (1 + rate)
        for i in here:
            last_close[i] = bars[i].close[own[i][t]]
        equity.append(cash + sum(u * c for u, c in zip(units, last_close) if u))
    return np.asarray(equity)


@pytest.mark.parametrize("inverse_vol", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_signals_mode_matches_a_plain_loop_on_random_bars_with_missing_bars(seed, inverse_vol):
    rng = np.random.default_rng(seed)
    bars = [_random_bars(rng, 400, missing=0.1) for _ in range(4)]
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": 5, "slow": 20})
    rules = PortfolioRules(weighting="inverse_vol" if inverse_vol else "equal", vol_window=10)
    result = run(bars, rules=rules, strategy=strategy, params=params, commission=15, cash=10_000)
    expected = _plain_signals_loop(bars, 5, 20, 10_000.0, 0.0015, inverse_vol, 10)
    assert result.metrics["trades"] > 20
    np.testing.assert_allclose(result.equity, expected, rtol=1e-9)
    assert sum(c["pnl"] for c in result.contributions) == pytest.approx(result.equity[-1] - 10_000, abs=1e-6)


def _plain_rebalance_loop(bars, cash, rate, period, window=None):
    """Without `window` equal weights; with it inverse volatility of each instrument's own returns, as known at
    its last bar's open (carried over the bars it lacks)."""
    k = len(bars)
    frame_open = pd.DataFrame({i: pd.Series(b.open, index=b.time) for i, b in enumerate(bars)}).sort_index()
    frame_close = pd.DataFrame({i: pd.Series(b.close, index=b.time) for i, b in enumerate(bars)}).sort_index()
    carried = frame_close.ffill()
    vol = pd.DataFrame({i: np.log(pd.Series(b.close, index=b.time)).diff().rolling(window or 2, min_periods=2).std()
                        .shift(1) for i, b in enumerate(bars)}).sort_index().ffill()
    stamps = pd.to_datetime(frame_open.index, unit="s")
    key = stamps.to_period("W-SUN" if period == "weekly" else "M")
    units = np.zeros(k)
    equity = []
    for n, t in enumerate(frame_open.index):
        if n == 1 or (n > 1 and key[n] != key[n - 1]):
            opens = frame_open.loc[t]
            value = cash + sum(units[i] * (opens[i] if not np.isnan(opens[i]) else carried.iloc[n - 1][i])
                               for i in range(k))
            w = np.full(k, 1.0 / k)
            if window and vol.iloc[n].notna().all():
                w = (1 / vol.iloc[n]).to_numpy()
                w = w / w.sum()
            deltas = [(i, value * w[i] / opens[i] - units[i]) for i in range(k) if not np.isnan(opens[i])]
            for i, delta in [d for d in deltas if d[1] < 0] + [d for d in deltas if d[1] > 0]:
                if delta < 0:
                    cash += -delta * opens[i] * (1 - rate)
                    units[i] += delta
                elif delta > 0:
                    buy = min(delta, cash / (opens[i] * (1 + rate)))
                    cash -= buy * opens[i] * (1 + rate)
                    units[i] += buy
        equity.append(cash + float(np.nansum(units * carried.iloc[n].to_numpy())))
    return np.asarray(equity)


@pytest.mark.parametrize("inverse_vol", [False, True])
@pytest.mark.parametrize("period", ["weekly", "monthly"])
def test_rebalance_mode_matches_a_plain_loop_on_random_bars_with_missing_bars(period, inverse_vol):
    rng = np.random.default_rng(7)
    bars = [_random_bars(rng, 300, missing=0.15) for _ in range(3)]
    rules = PortfolioRules(mode="rebalance", rebalance=period, weighting="inverse_vol" if inverse_vol else "equal",
                           vol_window=12)
    result = run(bars, rules=rules, commission=20, cash=10_000)
    expected = _plain_rebalance_loop(bars, 10_000.0, 0.002, period, window=12 if inverse_vol else None)
    np.testing.assert_allclose(result.equity, expected, rtol=1e-9)
    if inverse_vol:  # the weights really differ from equal ones
        equal = _plain_rebalance_loop(bars, 10_000.0, 0.002, period)
        assert np.max(np.abs(expected / equal - 1)) > 1e-3
    assert result.orders > 20


def test_whole_units_for_stocks_and_an_entry_that_cannot_buy_one_is_dropped():
    a = bars_of(days(0, 1, 2, 3), [30, 30, 30, 30])
    b = bars_of(days(0, 1, 2, 3, 4), [700, 700, 700, 700, 700])  # half of 1000 cannot buy one unit at 700
    result = run([a, b], strategy=scripted({4: [1, 1, 1, 1], 5: [1, 1, 1, 1, 1]}), fractional=[False, False])
    assert result.units[0, 2] == 16  # int(500 / 30)
    assert not result.units[1].any()  # dropped, and not retried while the signal holds
    assert result.cash[2] == pytest.approx(1000 - 16 * 30)
    rebalanced = run([a, b], rules=PortfolioRules(mode="rebalance"), fractional=[False, False])
    assert rebalanced.units[:, 1].tolist() == [16, 0]  # targets floored to whole units
