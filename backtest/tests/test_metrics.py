"""Metrics against hand calculations."""

import math

import numpy as np
import pytest

from backtest.engine import TradeArrays
from backtest.metrics import compute_metrics, geometric_mean

DAY = 86400


def trades(pnl, ret, entry, exit_, commission=None):
    n = len(pnl)
    return TradeArrays(
        side=np.ones(n), size=np.ones(n), entry_bar=np.array(entry), exit_bar=np.array(exit_),
        entry_price=np.ones(n), exit_price=np.ones(n), pnl=np.array(pnl, dtype=float),
        return_pct=np.array(ret, dtype=float), commission=np.array(commission or [0.0] * n),
        reason=np.zeros(n, dtype=np.int8),
    )


def test_equity_metrics_by_hand():
    time = np.arange(4, dtype=np.int64) * DAY
    equity = np.array([100.0, 110.0, 99.0, 121.0])
    close = np.array([50.0, 55.0, 50.0, 60.0])
    m = compute_metrics(time=time, equity=equity, close=close, trades=trades([], [], [], []), warmup=0,
                        annual_days=365)
    assert m["return_pct"] == pytest.approx(21.0)
    assert m["buy_hold_return_pct"] == pytest.approx(20.0)
    assert m["equity_final"] == 121 and m["equity_peak"] == 121
    # one drawdown: peak 110 on day 1, 99 on day 2 (10%), recovered on day 3: lasted 2 days
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)
    assert m["avg_drawdown_pct"] == pytest.approx(-10.0)
    assert m["max_drawdown_days"] == 2 and m["avg_drawdown_days"] == 2
    daily = np.array([0.1, -0.1, 121 / 99 - 1])
    g = (1.1 * 0.9 * (121 / 99)) ** (1 / 3) - 1
    ann = (1 + g) ** 365 - 1
    assert m["return_ann_pct"] == pytest.approx(ann * 100)
    vol = math.sqrt((daily.var(ddof=1) + (1 + g) ** 2) ** 365 - (1 + g) ** 730)
    assert m["volatility_ann_pct"] == pytest.approx(vol * 100)
    assert m["sharpe"] == pytest.approx(ann / vol)
    downside = math.sqrt((0.1**2) / 3)
    assert m["sortino"] == pytest.approx(ann / (downside * math.sqrt(365)))
    assert m["calmar"] == pytest.approx(ann / 0.10)
    years = 3 / 365.25
    assert m["cagr_pct"] == pytest.approx((1.21 ** (1 / years) - 1) * 100)
    assert m["duration_days"] == 3
    assert m["trades"] == 0 and m["win_rate_pct"] is None and m["sqn"] is None


def test_stock_annualization_uses_252_days():
    time = np.arange(3, dtype=np.int64) * DAY
    m = compute_metrics(time=time, equity=np.array([100.0, 101.0, 102.01]), close=np.ones(3),
                        trades=trades([], [], [], []), warmup=0, annual_days=252)
    assert m["return_ann_pct"] == pytest.approx((1.01**252 - 1) * 100)


def test_trade_metrics_by_hand():
    time = np.arange(10, dtype=np.int64) * 3600
    equity = np.linspace(100, 125, 10)
    t = trades([10.0, -5.0, 20.0], [0.10, -0.05, 0.20], entry=[0, 3, 6], exit_=[2, 4, 9], commission=[1, 1, 1])
    m = compute_metrics(time=time, equity=equity, close=np.linspace(10, 11, 10), trades=t, warmup=0,
                        annual_days=365)
    assert m["trades"] == 3
    assert m["win_rate_pct"] == pytest.approx(200 / 3)
    assert m["best_trade_pct"] == pytest.approx(20) and m["worst_trade_pct"] == pytest.approx(-5)
    assert m["avg_trade_pct"] == pytest.approx(((1.1 * 0.95 * 1.2) ** (1 / 3) - 1) * 100)
    assert m["profit_factor"] == pytest.approx(0.30 / 0.05)
    assert m["expectancy_pct"] == pytest.approx((0.10 - 0.05 + 0.20) / 3 * 100)
    pl = np.array([10.0, -5.0, 20.0])
    assert m["sqn"] == pytest.approx(math.sqrt(3) * pl.mean() / pl.std(ddof=1))
    assert m["kelly"] == pytest.approx(2 / 3 - (1 / 3) / (15 / 5))
    # bars 0-2, 3-4, 6-9 have a position: 9 of 10
    assert m["exposure_pct"] == pytest.approx(90)
    # durations 2h, 1h, 3h -> max 3h, mean 2h (in days)
    assert m["max_trade_days"] == pytest.approx(3 / 24) and m["avg_trade_days"] == pytest.approx(2 / 24)
    assert m["commissions"] == 3


def test_geometric_mean():
    assert geometric_mean(np.array([0.1, -0.1])) == pytest.approx(math.sqrt(1.1 * 0.9) - 1)
    assert geometric_mean(np.array([-1.0, 0.5])) == 0  # a total loss makes it 0, as backtesting.py does


def test_annual_periods_follow_the_bars_spacing():
    from backtest.metrics import annual_periods

    assert annual_periods(7 * DAY, 252) == 52 and annual_periods(7 * DAY, 365) == 52
    assert annual_periods(31 * DAY, 252) == 12 and annual_periods(28 * DAY, 365) == 12
    assert annual_periods(DAY, 252) == 252 and annual_periods(3600, 365) == 365
    # monthly closes: annualized over 12 periods, not 252
    time = np.array([np.datetime64(f"2020-{m:02d}-01", "s").astype(np.int64) for m in range(1, 13)])
    equity = 100 * 1.01 ** np.arange(12)
    m = compute_metrics(time=time, equity=equity, close=equity, trades=trades([], [], [], []), warmup=0,
                        annual_days=252)
    assert m["return_ann_pct"] == pytest.approx((1.01 ** 12 - 1) * 100)
