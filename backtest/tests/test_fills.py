"""Entries, stops, targets, trailing stops and sizing, bar by bar, and against a plain per-bar loop."""

import numpy as np
import pytest

from backtest.engine import Bars, Costs, run_backtest, simulate
from backtest.fills import EXIT_REASONS, Rules, held_positions
from backtest.strategies import STRATEGIES, ParamError, params_clean
from backtest.synthetic import synthetic_bars

ONE = 1 - np.finfo(float).eps  # entries spend all but one ulp of the cash, as backtesting.py does


def make(ohlc) -> Bars:
    arr = np.asarray(ohlc, dtype=float)
    t = np.arange(len(arr), dtype=np.int64) * 86400 + 1_700_006_400
    return Bars(t, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.ones(len(arr)))


def run(ohlc, target, cash=1000.0, fractional=True, **rules):
    """Decisions from the first bar's close on (warm-up -1), so a target on bar k fills at bar k + 1's open."""
    return simulate(make(ohlc), np.asarray(target, dtype=float), -1, Costs(initial_cash=cash, fractional=fractional),
                    Rules(**rules))


def trades(result):
    t = result.trades
    return [(int(t.entry_bar[i]), int(t.exit_bar[i]), float(t.exit_price[i]), EXIT_REASONS[t.reason[i]])
            for i in range(len(t))]


FLAT = [100, 101, 99, 100]  # open, high, low, close of a quiet bar


def test_state_and_cross_entries():
    target = np.array([1, 1, 1, -1, -1, 1.0])
    assert held_positions(target, 0).tolist() == [0, 0, 1, 1, -1, -1]
    # cross: no position until the signal changes (bar 3's close), the first change is the first position
    assert held_positions(target, 0, "cross").tolist() == [0, 0, 0, 0, -1, -1]
    # without shorts a change to flat leaves the market; the next change up enters again
    assert held_positions(np.array([1, 1, 0, 0, 1, 1.0]), 0, "cross").tolist() == [0, 0, 0, 0, 0, 1]
    # the bar after warm-up compares with the warm-up bar itself
    assert held_positions(np.array([0, -1, 1, 1.0]), 1, "cross").tolist() == [0, 0, 0, 1]


def test_stop_loss_fills_at_its_level_when_the_low_crosses_it():
    bars = [FLAT, [100, 102, 97, 101], [101, 101, 94, 96], FLAT]
    result = run(bars, [1, 1, 1, 1], stop_loss=5)
    assert trades(result) == [(1, 2, 95.0, "stop")]
    units = 1000 * ONE / 100
    assert result.equity[2] == pytest.approx(1000 - units * 5) and result.equity[3] == result.equity[2]
    assert result.open_trade is None  # not re-entered while the signal merely holds


def test_a_gap_through_the_stop_fills_at_the_open():
    result = run([FLAT, [100, 102, 97, 101], [90, 92, 88, 91], FLAT], [1, 1, 1, 1], stop_loss=5)
    assert trades(result) == [(1, 2, 90.0, "stop")]


def test_take_profit_at_its_level_or_at_a_better_open():
    assert trades(run([FLAT, [100, 105, 99, 104], [104, 112, 103, 111], FLAT], [1, 1, 1, 1], take_profit=10)) == [
        (1, 2, 110.0, "target")]
    assert trades(run([FLAT, [100, 105, 99, 104], [115, 116, 113, 114], FLAT], [1, 1, 1, 1], take_profit=10)) == [
        (1, 2, 115.0, "target")]


def test_stop_and_target_inside_one_bar_the_stop_fills_first():
    result = run([FLAT, [100, 111, 94, 100], FLAT], [1, 1, 1], stop_loss=5, take_profit=10)
    assert trades(result) == [(1, 1, 95.0, "stop")]  # the entry bar itself can stop out


def test_short_stops_mirror_longs():
    assert trades(run([FLAT, [100, 104, 99, 103], [103, 106, 102, 105], FLAT], [-1, -1, -1, -1], stop_loss=5)) == [
        (1, 2, 105.0, "stop")]
    assert trades(run([FLAT, [100, 101, 95, 96], [96, 97, 89, 90], FLAT], [-1, -1, -1, -1], take_profit=10)) == [
        (1, 2, 90.0, "target")]


def test_trailing_stop_follows_the_best_close_before_each_bar():
    # entry 100; closes 110, 120 raise the level to 108 (10 % under 120); the next bar's low 107 reaches it
    bars = [FLAT, [100, 111, 99, 110], [110, 121, 109, 120], [119, 119, 107, 111], FLAT]
    result = run(bars, [1, 1, 1, 1, 1], trailing_stop=10, stop_loss=5)
    assert trades(result) == [(1, 3, 108.0, "trailing")]
    # the fixed stop binds while the trailing level is still below it
    assert trades(run([FLAT, [100, 101, 94, 96], FLAT], [1, 1, 1], trailing_stop=10, stop_loss=5)) == [
        (1, 1, 95.0, "stop")]


def test_atr_multiples_use_the_atr_known_at_the_decision():
    atr = np.array([2.0, 4.0, 3.0, 3.0])  # the entry at bar 1's open uses bar 0's ATR: 2
    bars = make([FLAT, [100, 103, 97, 99], [99, 100, 95, 97], FLAT])
    result = simulate(bars, np.ones(4), -1, Costs(initial_cash=1000), Rules(stop_loss=2, stop_unit="atr"), atr)
    assert trades(result) == [(1, 2, 96.0, "stop")]  # 100 - 2 x 2


def test_after_a_stop_state_mode_waits_for_the_next_fresh_signal():
    # stopped out in bar 2; the signal holds (no re-entry), turns flat at bar 3's close, long again at bar 4's
    bars = [FLAT, FLAT, [100, 101, 90, 92], FLAT, FLAT, FLAT, FLAT]
    result = run(bars, [1, 1, 1, 0, 1, 1, 1], stop_loss=5)
    assert [t[:2] for t in trades(result)] == [(1, 2)]
    assert result.open_trade["entry_bar"] == 5


def test_a_reversal_after_a_stop_enters_the_other_side():
    bars = [FLAT, [100, 101, 90, 92], FLAT, FLAT, FLAT]
    result = run(bars, [1, 1, -1, -1, -1], stop_loss=5)
    assert trades(result) == [(1, 1, 95.0, "stop")]
    assert result.open_trade["side"] == "short" and result.open_trade["entry_bar"] == 3


def test_sizing_by_fraction_of_equity_or_fixed_units():
    half = run([FLAT, FLAT, FLAT], [1, 1, 1], size=0.5)
    assert half.open_trade["size"] == pytest.approx(500 * ONE / 100)
    units = run([FLAT, FLAT, FLAT], [1, 1, 1], fractional=False, sizing="units", size=3.7)
    assert units.open_trade["size"] == 3  # whole units for stocks
    assert run([FLAT, FLAT, FLAT], [1, 1, 1], sizing="units", size=3.7).open_trade["size"] == 3.7


def test_an_entry_cash_cannot_pay_is_retried_in_state_mode_and_dropped_in_cross_mode():
    bars = [FLAT, [120, 121, 119, 120], [110, 111, 90, 95], [95, 96, 94, 95], FLAT]
    state = run(bars, [1, 1, 1, 1, 1], cash=100, fractional=False)
    assert state.open_trade["entry_bar"] == 3 and state.open_trade["size"] == 1  # 120 and 110 too dear
    # cross: the change at bar 1's close (0 -> 1) asks for an entry at bar 2's open, 110: dropped for good
    cross = run(bars, [0, 1, 1, 1, 1], cash=100, fractional=False, entry="cross")
    assert cross.open_trade is None and len(cross.trades) == 0
    assert run(bars, [0, 1, 1, 1, 1], cash=100, fractional=False).open_trade["entry_bar"] == 3


def test_finalize_trades_closes_the_last_position_at_the_last_close():
    bars = [FLAT, FLAT, [100, 110, 99, 108]]
    left = run(bars, [1, 1, 1])
    closed = run(bars, [1, 1, 1], finalize_trades=True)
    assert len(left.trades) == 0 and left.open_trade is not None
    assert trades(closed) == [(1, 2, 108.0, "end")] and closed.open_trade is None
    assert closed.equity[-1] == pytest.approx(left.equity[-1])  # no commission here: the same value


def test_buy_and_hold_shows_its_exposure_and_entry_commission():
    bars = Bars.from_frame(synthetic_bars(n=500, interval_seconds=86400, seed=3))
    result = run_backtest(bars=bars, strategy=STRATEGIES["buy_hold"], params={},
                          costs=Costs(initial_cash=1000, commission_bps=10), annual_days=365)
    entry = result.open_trade
    assert result.metrics["trades"] == 0
    assert result.metrics["exposure_pct"] == pytest.approx(498 / 500 * 100)  # decided on bar 1, held from bar 2
    assert result.metrics["commissions"] == pytest.approx(entry["size"] * entry["entry_price"] * 0.001)
    assert entry["commission"] == pytest.approx(result.metrics["commissions"])


def test_execution_params_are_checked_and_left_out_at_their_defaults():
    sma = STRATEGIES["sma_cross"]
    assert params_clean(sma, {"entry": "state", "stop_loss": 0}) == {"fast": 10, "slow": 30, "allow_short": False}
    assert params_clean(sma, {"entry": "cross"})["entry"] == "cross"
    for raw, field in [({"entry": "sometimes"}, "entry"), ({"entry": ["cross"]}, "entry"), ({"size": 0}, "size"),
                       ({"size": 1.5}, "size"), ({"stop_loss": 100}, "stop_loss"), ({"stop_unit": "bps"}, "stop_unit"),
                       ({"trailing_stop": -1}, "trailing_stop"), ({"sizing": "units", "size": 0}, "size")]:
        with pytest.raises(ParamError) as exc:
            params_clean(sma, raw)
        assert field in exc.value.errors, raw
    assert params_clean(sma, {"stop_loss": 150, "stop_unit": "atr"})["stop_loss"] == 150
    with pytest.raises(ParamError):
        params_clean(STRATEGIES["buy_hold"], {"entry": "cross"})  # buy & hold has no signal to cross


# --- an independent computation: the stated rules walked bar by bar --------------------------------


def per_bar_reference(bars: Bars, held: np.ndarray, rules: Rules, cash: float):
    """A plain loop over every bar (no commission or slippage, fractional units)."""
    out, pos, entry, entry_bar, blocked, best = [], 0.0, 0.0, -1, False, 0.0
    for j in range(len(bars)):
        o, h, lo, c = bars.open[j], bars.high[j], bars.low[j], bars.close[j]
        change = held[j] != (held[j - 1] if j else 0.0)
        if pos and change:
            cash += pos * (o - entry)
            out.append((entry_bar, j, o, "signal"))
            pos = 0.0
        if change:
            blocked = False
        if not pos and held[j] and not blocked:
            side = held[j]
            pos, entry, entry_bar, best = side * cash * ONE / o, o, j, o
        if pos:
            side = 1.0 if pos > 0 else -1.0
            fixed = entry * (1 - side * rules.stop_loss / 100) if rules.stop_loss else None
            trail = best * (1 - side * rules.trailing_stop / 100) if rules.trailing_stop else None
            stops = [x for x in (fixed, trail) if x is not None]
            stop = (max(stops) if side > 0 else min(stops)) if stops else None
            kind = "trailing" if trail is not None and (fixed is None or side * trail > side * fixed) else "stop"
            target = entry * (1 + side * rules.take_profit / 100) if rules.take_profit else None
            adverse, favorable = (lo, h) if side > 0 else (h, lo)
            fill = None
            if stop is not None and side * o <= side * stop:
                fill = (o, kind)
            elif target is not None and side * o >= side * target:
                fill = (o, "target")
            elif stop is not None and side * adverse <= side * stop:
                fill = (stop, kind)
            elif target is not None and side * favorable >= side * target:
                fill = (target, "target")
            if fill:
                cash += pos * (fill[0] - entry)
                out.append((entry_bar, j, fill[0], fill[1]))
                pos, blocked = 0.0, True
            else:
                best = max(best, c) if side > 0 else min(best, c)
    return out, cash + (pos * (bars.close[-1] - entry) if pos else 0.0)


@pytest.mark.parametrize("rules", [
    Rules(stop_loss=2), Rules(take_profit=3), Rules(stop_loss=1.5, take_profit=2), Rules(trailing_stop=2),
    Rules(stop_loss=3, trailing_stop=1.5, take_profit=4), Rules(entry="cross", stop_loss=2, take_profit=2),
])
def test_fills_match_a_per_bar_loop(rules):
    bars = Bars.from_frame(synthetic_bars(n=3000, interval_seconds=3600, seed=21))
    rng = np.random.default_rng(4)
    target = np.repeat(rng.choice([-1.0, 0.0, 1.0], size=150), 20)  # regimes of 20 bars
    result = simulate(bars, target, 0, Costs(initial_cash=10_000), rules)
    ref_trades, ref_equity = per_bar_reference(bars, held_positions(target, 0, rules.entry), rules, 10_000.0)
    ours = trades(result)
    assert len(ours) > 50 and {t[3] for t in ours} - {"signal"}
    assert [t[:2] + (t[3],) for t in ours] == [t[:2] + (t[3],) for t in ref_trades]
    assert np.allclose([t[2] for t in ours], [t[2] for t in ref_trades], rtol=1e-12)
    assert result.equity[-1] == pytest.approx(ref_equity, rel=1e-9)
