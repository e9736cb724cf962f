"""Portfolio runs: ours vs vectorbt's `Portfolio.from_signals(..., cash_sharing=True, group_by=True)`.

The same 20 instruments × 10,000 hourly bars (synthetic, aligned) and the same rules on both sides:
SMA(10/30) on each instrument, long only, fills at the next bar's open, 10 bps commission, one cash
balance. An entry takes cash × w / (sum of the weights of the instruments holding no position, itself
included), which vectorbt expresses as `size_type="percent"` of its cash with the percentages worked out
from the signals, and an explicit call order (each bar's exits first, then entries in column order).
Weights equal, then inverse volatility (30 returns, pandas on both sides). Signals on vectorbt's side are
computed by pandas, independently of our indicators.

Printed: agreement (trades, final equity, largest relative equity difference over all bars), then time:
our whole run (signals, fills, equity, every metric) against the 1 s target and against vectorbt (signals,
simulation, value and Sharpe; warm, its numba compile time apart). Then the rebalanced mode
(monthly, equal weights) against `Portfolio.from_orders(size_type="targetpercent")` (with vectorbt's own call
order, and with ours: sells first, then the instruments' order), and our run with 10 %
of bars missing at random (union alignment).

Run: .venv/bin/python bench/backtest_portfolio.py [--instruments 20] [--bars 10000]
Needs `vectorbt` (requirements/bench.txt).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from backtest.engine import Bars, Costs  # noqa: E402
from backtest.portfolio_engine import PortfolioRules, run_portfolio  # noqa: E402
from backtest.portfolio_weights import rebalance_bars  # noqa: E402
from backtest.strategies import STRATEGIES, params_clean  # noqa: E402
from backtest.synthetic import synthetic_bars  # noqa: E402

FAST, SLOW, FEES, CASH, VOL_WINDOW = 10, 30, 0.001, 100_000.0, 30
TARGET_S = 1.0


def best_of(repeats, func):
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def ours(bars, rules):
    strategy = STRATEGIES["sma_cross"]
    return run_portfolio(bars=bars, symbols=[f"S{i}" for i in range(len(bars))], fractional=[True] * len(bars),
                         rules=rules, costs=Costs(initial_cash=CASH, commission_bps=FEES * 1e4), annual_days=365,
                         strategy=strategy, params=params_clean(strategy, {"fast": FAST, "slow": SLOW}))


def held_frame(close: pd.DataFrame) -> pd.DataFrame:
    """The position wanted during each bar: the previous close's SMA decision, from the bar after warm-up."""
    long = close.rolling(FAST).mean() > close.rolling(SLOW).mean()
    long.iloc[:SLOW] = False  # the slow SMA is defined at SLOW - 1; the first decision is the bar after
    return long.shift(1, fill_value=False)


def weights_frame(close: pd.DataFrame, inverse_vol: bool) -> np.ndarray:
    k = close.shape[1]
    if not inverse_vol:
        return np.full(close.shape, 1.0 / k)
    vol = np.log(close).diff().rolling(VOL_WINDOW, min_periods=2).std().shift(1).to_numpy()
    inverse = 1.0 / vol
    ok = np.all(np.isfinite(inverse), axis=1)
    w = np.full(close.shape, 1.0 / k)
    w[ok] = inverse[ok] / inverse[ok].sum(axis=1, keepdims=True)
    return w


def vbt_signals(vbt, frames, inverse_vol):
    open_, close = frames["Open"], frames["Close"]
    held = held_frame(close).to_numpy()
    prev = np.vstack([np.zeros((1, held.shape[1]), dtype=bool), held[:-1]])
    entries, exits = held & ~prev, ~held & prev
    w = weights_frame(close, inverse_vol)
    n, k = held.shape
    size = np.full((n, k), np.nan)
    call_seq = np.tile(np.arange(k), (n, 1))
    for t in np.flatnonzero(entries.any(axis=1)):
        entering = np.flatnonzero(entries[t])
        free_staying = w[t][~held[t]].sum()  # flat after this bar's orders
        rest = w[t][entering][::-1].cumsum()[::-1]  # the entering ones still to come, each included
        size[t, entering] = w[t][entering] / (free_staying + rest)
    for t in np.flatnonzero(exits.any(axis=1)):
        out = np.flatnonzero(exits[t])
        call_seq[t] = np.r_[out, np.setdiff1d(np.arange(k), out)]
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=open_, size=size, size_type="percent", fees=FEES, init_cash=CASH,
        cash_sharing=True, group_by=True, call_seq=call_seq, freq="1h",
    )
    return pf, (pf.value().to_numpy(), pf.trades.closed.count(), pf.sharpe_ratio())


def vbt_rebalance(vbt, frames, times, sells=None):
    """`sells` (bars × instruments, bool): call each bar's sells first, then the rest in column order (our
    order); without it vectorbt's own `call_seq="auto"` (sells first, then buys by size)."""
    open_, close = frames["Open"], frames["Close"]
    n, k = close.shape
    size = np.full((n, k), np.nan)
    rows = rebalance_bars(times, "monthly")
    size[rows] = 1.0 / k
    call_seq = "auto"
    if sells is not None:
        call_seq = np.tile(np.arange(k), (n, 1))
        for t in rows:
            out = np.flatnonzero(sells[t])
            call_seq[t] = np.r_[out, np.setdiff1d(np.arange(k), out)]
    pf = vbt.Portfolio.from_orders(close, size=size, size_type="targetpercent", price=open_, fees=FEES,
                                   init_cash=CASH, cash_sharing=True, group_by=True, call_seq=call_seq, freq="1h")
    return pf.value().to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instruments", type=int, default=20)
    parser.add_argument("--bars", type=int, default=10_000)
    args = parser.parse_args()
    import django

    django.setup()
    k, n = args.instruments, args.bars
    dfs = [synthetic_bars(n=n, seed=100 + i, start_price=20 + 7 * i) for i in range(k)]
    bars = [Bars.from_frame(df) for df in dfs]
    frames = {c: pd.DataFrame({i: df[c] for i, df in enumerate(dfs)}) for c in ("Open", "Close")}
    print(f"portfolio: {k} instruments × {n:,} hourly bars, SMA({FAST}/{SLOW}) long only, {FEES * 1e4:.0f} bps, "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        import vectorbt as vbt
    except ImportError:
        vbt = None
        print("vectorbt is not installed: only our timings are printed")

    for inverse_vol in (False, True):
        label = "inverse volatility" if inverse_vol else "equal weights"
        rules = PortfolioRules(mode="signals", weighting="inverse_vol" if inverse_vol else "equal",
                               vol_window=VOL_WINDOW)
        ours(bars, rules)  # warm
        our_s, result = best_of(5, lambda: ours(bars, rules))
        line = f"[{label}] ours {our_s * 1000:8.1f} ms ({our_s / TARGET_S:.3f} of the 1 s target)"
        if vbt is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                vbt_signals(vbt, frames, inverse_vol)
                compile_s = time.perf_counter() - t0
                vbt_s, (value, trades, _) = best_of(3, lambda: vbt_signals(vbt, frames, inverse_vol)[1])
            diff = float(np.max(np.abs(result.equity / value - 1)))
            print(f"[{label}] agreement: trades ours {result.metrics['trades']} / vectorbt {trades}; final equity "
                  f"ours {result.equity[-1]:,.6f} / vectorbt {value[-1]:,.6f}; largest relative equity difference "
                  f"over {len(value):,} bars {diff:.2e}")
            line += (f"; vectorbt {vbt_s * 1000:8.1f} ms warm (first call {compile_s:.1f} s with compiling): "
                     f"ours is {vbt_s / our_s:.2f}× faster")
        print(line)

    rules = PortfolioRules(mode="rebalance", rebalance="monthly")
    our_s, result = best_of(5, lambda: ours(bars, rules))
    line = f"[monthly rebalance, equal] ours {our_s * 1000:8.1f} ms, {result.orders} orders"
    if vbt is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vbt_rebalance(vbt, frames, bars[0].time)
            vbt_s, value = best_of(3, lambda: vbt_rebalance(vbt, frames, bars[0].time))
            # The same call order as ours: which orders are sells is read from our run's units.
            sells = np.diff(result.units, axis=1, prepend=0.0).T < 0
            same_order = vbt_rebalance(vbt, frames, bars[0].time, sells)
        diff = float(np.max(np.abs(result.equity / value - 1)))
        exact = float(np.max(np.abs(result.equity / same_order - 1)))
        line += (f"; vectorbt from_orders {vbt_s * 1000:.1f} ms ({vbt_s / our_s:.2f}×); final equity ours "
                 f"{result.equity[-1]:,.4f} / vectorbt {value[-1]:,.4f}, largest relative difference {diff:.2e} "
                 "(vectorbt calls each bar's buys by size, ours by instrument: the cash-limited last buy differs); "
                 f"with vectorbt calling orders in our order {same_order[-1]:,.4f}, largest difference {exact:.2e}")
    print(line)

    rng = np.random.default_rng(9)
    gappy = []
    for b in bars:
        keep = rng.random(len(b)) > 0.1
        keep[:2] = True
        gappy.append(Bars(*(getattr(b, f)[keep] for f in ("time", "open", "high", "low", "close", "volume"))))
    rules = PortfolioRules(mode="signals", weighting="inverse_vol", vol_window=VOL_WINDOW)
    our_s, result = best_of(5, lambda: ours(gappy, rules))
    print(f"[10 % of bars missing, inverse volatility] ours {our_s * 1000:.1f} ms over {len(result.time):,} "
          f"union bars ({our_s / TARGET_S:.3f} of the 1 s target), {result.metrics['trades']} trades")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
