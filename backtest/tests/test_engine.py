"""Fill and commission semantics on tiny series computed by hand; no look-ahead."""

import numpy as np
import pytest

from backtest.engine import Bars, Costs, run_backtest, simulate
from backtest.fills import held_positions
from backtest.indicators import IndicatorCache
from backtest.strategies import STRATEGIES, params_clean
from backtest.synthetic import synthetic_bars

OPENS = [10.0, 11.0, 12.0, 13.0, 14.0]
CLOSES = [10.5, 11.5, 12.5, 13.5, 14.5]


def tiny() -> Bars:
    t = np.arange(5, dtype=np.int64) * 86400 + 1_700_006_400
    o, c = np.array(OPENS), np.array(CLOSES)
    return Bars(t, o, np.maximum(o, c), np.minimum(o, c), c, np.ones(5))


def test_long_trade_fills_at_next_open_with_commission_on_both_sides():
    # Decide long on bar 1's close, flat on bar 3's close: hold bars 2..3, fill at opens 12 and 14.
    result = simulate(tiny(), np.array([0, 1, 1, 0, 0.0]), 0, Costs(initial_cash=1000, commission_bps=100))
    units = 1000 / (12 * 1.01)
    entry_fee, exit_fee = units * 12 * 0.01, units * 14 * 0.01
    assert len(result.trades) == 1
    assert result.trades.entry_bar[0] == 2 and result.trades.exit_bar[0] == 4
    assert result.trades.entry_price[0] == 12 and result.trades.exit_price[0] == 14
    assert result.trades.size[0] == pytest.approx(units)
    assert result.trades.commission[0] == pytest.approx(entry_fee + exit_fee)
    assert result.trades.pnl[0] == pytest.approx(units * 2 - entry_fee - exit_fee)
    # net return: 14/12 - 1 minus both fees relative to the entry value
    assert result.trades.return_pct[0] == pytest.approx(2 / 12 - 0.01 - 14 / 12 * 0.01)
    cash_in_trade = 1000 - entry_fee
    assert result.equity == pytest.approx([1000, 1000, cash_in_trade + units * 0.5, cash_in_trade + units * 1.5,
                                           1000 - entry_fee + units * 2 - exit_fee])
    assert result.open_trade is None


def test_whole_units_for_stocks():
    result = simulate(tiny(), np.array([0, 1, 1, 0, 0.0]), 0,
                      Costs(initial_cash=1000, commission_bps=100, fractional=False))
    assert result.trades.size[0] == 82  # floor(1000 / 12.12)
    assert result.equity[-1] == pytest.approx(1000 - 82 * 12 * 0.01 + 82 * 2 - 82 * 14 * 0.01)


def test_slippage_worsens_both_fills():
    result = simulate(tiny(), np.array([0, 1, 1, 0, 0.0]), 0, Costs(initial_cash=1000, slippage_bps=50))
    assert result.trades.entry_price[0] == pytest.approx(12 * 1.005)
    assert result.trades.exit_price[0] == pytest.approx(14 * 0.995)
    assert result.equity[-1] == pytest.approx(1000 * (14 * 0.995) / (12 * 1.005))


def test_short_and_reversal():
    short = simulate(tiny(), np.array([0, -1, -1, 0, 0.0]), 0, Costs(initial_cash=1000))
    assert short.trades.side[0] == -1
    assert short.equity[-1] == pytest.approx(1000 - 1000 / 12 * 2)
    # long from bar 2, reversed to short at bar 3's open (13), still short at the end
    rev = simulate(tiny(), np.array([0, 1, -1, -1, -1.0]), 0, Costs(initial_cash=1000))
    assert len(rev.trades) == 1 and rev.trades.exit_bar[0] == 3
    cash = 1000 * 13 / 12
    assert rev.open_trade["side"] == "short" and rev.open_trade["size"] == pytest.approx(cash / 13)
    assert rev.equity[-1] == pytest.approx(cash - cash / 13 * (14.5 - 13))


def test_decisions_start_the_bar_after_warm_up():
    held = held_positions(np.ones(6), warmup=2)
    assert held.tolist() == [0, 0, 0, 0, 1, 1]


def test_nothing_traded_leaves_cash_flat():
    result = simulate(tiny(), np.zeros(5), 0, Costs(initial_cash=500))
    assert result.equity.tolist() == [500.0] * 5 and len(result.trades) == 0


def test_going_broke_stops_the_run():
    t = np.arange(4, dtype=np.int64) * 86400
    o = np.array([10.0, 10.0, 10.0, 30.0])
    c = np.array([10.0, 10.0, 25.0, 30.0])
    bars = Bars(t, o, np.maximum(o, c), np.minimum(o, c), c, np.ones(4))
    result = simulate(bars, np.array([-1, -1, -1, -1.0]), 0, Costs(initial_cash=100))
    assert result.equity[2] == 0 and result.equity[3] == 0
    assert len(result.trades) == 1 and result.trades.exit_bar[0] == 2


def _bars(n=1500, seed=5):
    return Bars.from_frame(synthetic_bars(n=n, interval_seconds=3600, seed=seed))


@pytest.mark.parametrize("key", list(STRATEGIES))
@pytest.mark.parametrize("allow_short", [False, True])
def test_no_look_ahead(key, allow_short):
    """Changing or removing future bars never changes a past decision or past equity."""
    strategy = STRATEGIES[key]
    params = params_clean(strategy, {"allow_short": allow_short} if strategy.supports_short else {})
    full = _bars()
    rng = np.random.default_rng(0)
    target, warmup = strategy.signals(full, params, IndicatorCache())
    held_full = held_positions(target, warmup)
    costs = Costs(commission_bps=10)
    eq_full = simulate(full, target, warmup, costs).equity
    for cut in (50, 400, 1000, 1499):
        head = full.head(cut)
        t_head, w_head = strategy.signals(head, params, IndicatorCache())
        assert np.array_equal(held_positions(t_head, w_head), held_full[:cut]), (key, cut)
        # a different future: scramble every bar from `cut` on
        other = full.head(len(full))
        noise = rng.lognormal(0, 0.05, size=len(full) - cut)
        for name in ("open", "high", "low", "close"):
            getattr(other, name)[cut:] *= noise
        other.high[cut:] = np.maximum.reduce([other.open[cut:], other.high[cut:], other.close[cut:]])
        other.low[cut:] = np.minimum.reduce([other.open[cut:], other.low[cut:], other.close[cut:]])
        t_other, w_other = strategy.signals(other, params, IndicatorCache())
        held_other = held_positions(t_other, w_other)
        assert np.array_equal(held_other[: cut + 1], held_full[: cut + 1]), (key, cut)
        eq_other = simulate(other, t_other, w_other, costs).equity
        assert np.allclose(eq_other[:cut], eq_full[:cut], rtol=0, atol=1e-9), (key, cut)


def test_run_backtest_needs_two_bars():
    with pytest.raises(ValueError):
        run_backtest(bars=tiny().head(1), strategy=STRATEGIES["buy_hold"], params={}, costs=Costs(), annual_days=365)


def test_matches_backtesting_py_on_a_small_series():
    """Same trades and equity as backtesting.py (installed for the benchmark; skipped without it)."""
    bt = pytest.importorskip("backtesting")
    import pandas as pd
    import warnings

    df = synthetic_bars(n=3000, interval_seconds=3600, seed=11, start_price=5000)

    class SmaCross(bt.Strategy):
        def init(self):
            sma = lambda v, n: pd.Series(v).rolling(n).mean().to_numpy()  # noqa: E731
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self):
            if self.fast[-1] > self.slow[-1]:
                if not self.position.is_long:
                    self.position.close()
                    self.buy()
            elif not self.position.is_short:
                self.position.close()
                self.sell()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = bt.Backtest(df, SmaCross, cash=100_000, commission=0.002).run()
    strategy = STRATEGIES["sma_cross"]
    ours = run_backtest(
        bars=Bars.from_frame(df), strategy=strategy,
        params=params_clean(strategy, {"fast": 10, "slow": 30, "allow_short": True}),
        costs=Costs(initial_cash=100_000, commission_bps=20, fractional=False), annual_days=365,
    )
    assert ours.trades.entry_bar.tolist() == ref["_trades"]["EntryBar"].tolist()
    assert ours.trades.size.tolist() == ref["_trades"]["Size"].abs().tolist()
    assert ours.equity[-1] == pytest.approx(ref["Equity Final [$]"], rel=1e-9)
    for theirs, mine in [("Sharpe Ratio", "sharpe"), ("SQN", "sqn"), ("Max. Drawdown [%]", "max_drawdown_pct"),
                         ("Win Rate [%]", "win_rate_pct"), ("Return (Ann.) [%]", "return_ann_pct")]:
        assert ours.metrics[mine] == pytest.approx(float(ref[theirs]), rel=1e-9), theirs
