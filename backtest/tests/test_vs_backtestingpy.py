"""backtesting.py's README example through our API: the same closed trades and the same final equity.

Runs where the bench package is installed (requirements/bench.txt); skipped otherwise. The GOOG
data comes from the installed `backtesting` package.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from backtest import market_services

bt = pytest.importorskip("backtesting")


def readme_sma_cross():
    """backtesting.py's README strategy, verbatim: `SmaCross(10, 20)` with `exclusive_orders=True`."""
    from backtesting.lib import crossover
    from backtesting.test import GOOG, SMA

    class SmaCross(bt.Strategy):
        n1, n2 = 10, 20

        def init(self):
            self.sma1 = self.I(SMA, self.data.Close, self.n1)
            self.sma2 = self.I(SMA, self.data.Close, self.n2)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.sell()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.Backtest(GOOG, SmaCross, cash=10_000, commission=0.002, exclusive_orders=True,
                            finalize_trades=False).run()
    return GOOG, stats


def goog_instrument(goog: pd.DataFrame):
    instrument = market_services.instrument_create(symbol="GOOG", kind="stock", exchange="NASDAQ")
    frame = pd.DataFrame({
        "open_time": pd.DatetimeIndex(goog.index).tz_localize("UTC"), "open": goog.Open.to_numpy(),
        "high": goog.High.to_numpy(), "low": goog.Low.to_numpy(), "close": goog.Close.to_numpy(),
        "volume": goog.Volume.to_numpy(dtype=float),
    })
    market_services.bars_upsert(instrument=instrument, interval="1d", frame=frame)
    return instrument


@pytest.mark.django_db
def test_readme_sma_cross_on_goog_through_the_api(sync_jobs, auth_client, user):
    goog, ref = readme_sma_cross()
    goog_instrument(goog)
    client = auth_client(user)
    response = client.post("/api/backtest/runs/", {
        "symbol": "GOOG", "interval": "1d", "strategy": "sma_cross", "commission_bps": 20, "initial_cash": 10_000,
        "params": {"fast": 10, "slow": 20, "allow_short": True, "entry": "cross"},
    }, format="json")
    assert response.status_code == 201, response.json()
    sync_jobs.commit()
    detail = client.get(f"/api/backtest/runs/{response.json()['id']}/").json()
    assert detail["status"] == "succeeded", detail
    result = detail["result"]
    ours, theirs = result["trades"], ref["_trades"]
    assert len(ours) == len(theirs) == ref["# Trades"] > 50
    assert [t["entry_bar"] for t in ours] == theirs["EntryBar"].tolist()
    assert [t["exit_bar"] for t in ours] == theirs["ExitBar"].tolist()
    assert [t["size"] * (1 if t["side"] == "long" else -1) for t in ours] == theirs["Size"].tolist()
    assert [t["entry_price"] for t in ours] == theirs["EntryPrice"].tolist()
    assert [t["exit_price"] for t in ours] == theirs["ExitPrice"].tolist()
    assert np.allclose([t["pnl"] for t in ours], theirs["PnL"].to_numpy(), rtol=1e-12, atol=1e-9)
    assert result["metrics"]["equity_final"] == pytest.approx(float(ref["Equity Final [$]"]), rel=1e-12)
    assert result["open_trade"] is not None  # the last trade stays open, as backtesting.py leaves it
    # the first position is taken at the first cross, not at the first bar after warm-up
    assert ours[0]["entry_bar"] > 21


@pytest.mark.django_db
def test_state_entries_differ_from_the_readme_example(sync_jobs, auth_client, user):
    """The same request with the default entry ("state") is in the market from the first decision on."""
    goog, ref = readme_sma_cross()
    goog_instrument(goog)
    client = auth_client(user)
    created = client.post("/api/backtest/runs/", {
        "symbol": "GOOG", "interval": "1d", "strategy": "sma_cross", "commission_bps": 20,
        "params": {"fast": 10, "slow": 20, "allow_short": True},
    }, format="json").json()
    sync_jobs.commit()
    body = client.get(f"/api/backtest/runs/{created['id']}/").json()
    assert body["result"]["trades"][0]["entry_bar"] == 21
    assert body["result"]["metrics"]["equity_final"] != pytest.approx(float(ref["Equity Final [$]"]), rel=1e-6)


# --- stops and targets ----------------------------------------------------------------------------------------
# backtesting.py takes a stop-loss / take-profit as an absolute price when the order is placed (`sl=`, `tp=`); ours
# are distances from the fill. The rules are the same where the fill equals the price the order was placed at:
# on bars that each open at the previous close, backtesting.py's `sl = close × (1 − d)` at the signal is exactly our
# `entry × (1 − d)` at the next open, and both stops rest from the entry bar on (backtesting.py re-checks a new
# trade's stop and target within its entry bar; the stop first when both are inside one bar).


def gapless_bars(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """Synthetic daily bars whose every bar opens at the previous bar's close (high/low widened to hold it)."""
    from backtest.synthetic import synthetic_bars

    df = synthetic_bars(n=n, interval_seconds=86400, start="2010-01-04", seed=seed, start_price=100.0, kind="stock")
    df["Open"] = df["Close"].shift(1).fillna(df["Open"])
    df["High"] = df[["High", "Open", "Close"]].max(axis=1)
    df["Low"] = df[["Low", "Open", "Close"]].min(axis=1)
    return df


def sma_cross_with_stops(df: pd.DataFrame, *, stop_loss: float, take_profit: float, short: bool,
                         fast: int = 10, slow: int = 30):
    """SMA cross entries (`crossover()`), with the stop and target set from the signal close in percent."""
    from backtesting.lib import crossover
    from backtesting.test import SMA

    def levels(close: float, side: int) -> dict:
        out = {}
        if stop_loss:
            out["sl"] = close - close * stop_loss / 100 if side > 0 else close + close * stop_loss / 100
        if take_profit:
            out["tp"] = close + close * take_profit / 100 if side > 0 else close - close * take_profit / 100
        return out

    class SmaCrossStops(bt.Strategy):
        def init(self):
            self.fast = self.I(SMA, self.data.Close, fast)
            self.slow = self.I(SMA, self.data.Close, slow)

        def next(self):
            close = float(self.data.Close[-1])
            if crossover(self.fast, self.slow):
                self.buy(**levels(close, 1))
            elif crossover(self.slow, self.fast):
                if short:
                    self.sell(**levels(close, -1))
                else:
                    self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.Backtest(df, SmaCrossStops, cash=10_000, commission=0.002, exclusive_orders=True,
                           finalize_trades=False).run()


@pytest.mark.parametrize("stop_loss, take_profit, short", [
    (3.0, 0.0, False), (3.0, 0.0, True), (0.0, 6.0, True), (2.5, 5.0, False), (2.5, 5.0, True),
])
def test_stops_and_targets_give_the_same_trades_as_backtesting_py(stop_loss, take_profit, short):
    from backtest.engine import Bars, Costs, run_backtest
    from backtest.strategies import STRATEGIES, params_clean

    df = gapless_bars()
    ref = sma_cross_with_stops(df, stop_loss=stop_loss, take_profit=take_profit, short=short)
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": 10, "slow": 30, "allow_short": short, "entry": "cross",
                                     "stop_loss": stop_loss, "take_profit": take_profit})
    ours = run_backtest(bars=Bars.from_frame(df), strategy=strategy, params=params,
                        costs=Costs(initial_cash=10_000, commission_bps=20, fractional=False), annual_days=252)
    theirs = ref["_trades"]
    t = ours.trades
    assert len(t) == len(theirs) == ref["# Trades"] > 50
    assert t.entry_bar.tolist() == theirs["EntryBar"].tolist()
    assert t.exit_bar.tolist() == theirs["ExitBar"].tolist()
    assert (t.size * t.side).tolist() == theirs["Size"].tolist()
    assert t.entry_price.tolist() == theirs["EntryPrice"].tolist()
    assert t.exit_price.tolist() == theirs["ExitPrice"].tolist()
    np.testing.assert_allclose(t.pnl, theirs["PnL"].to_numpy(), rtol=1e-12, atol=1e-9)
    assert ours.metrics["equity_final"] == pytest.approx(float(ref["Equity Final [$]"]), rel=1e-12)
    # the stops and targets did fire, many times
    from backtest.fills import EXIT_REASONS

    reasons = [EXIT_REASONS[r] for r in t.reason]
    if stop_loss:
        assert reasons.count("stop") > 10
    if take_profit:
        assert reasons.count("target") > 10
