"""Our engine vs vectorbt (bench-only dependency), doing the same work on both sides.

For each size (10k, 100k, 1M hourly bars): SMA(20/100) long-only, fractional units, 1 bp, fills at
the next bar's open. Both sides compute the signals (two SMAs), simulate, and compute the same
statistics (total return, Sharpe, max drawdown, trade count, win rate). vectorbt is timed warm; its
numba compile time (the first call) is reported separately. Trade counts and final values are
compared. Also: stops (stop-loss 2 %, take-profit 4 %, trailing 3 %) on our side, as a ratio to our
plain run, since stops change the fill path; and the 1,000-combination sweep over 10k bars.

Run: .venv/bin/python bench/backtest_vs_vectorbt.py [--sizes 10000,100000,1000000]
Needs `vectorbt` (not in any requirements file: a bench-only install, see backtest/README.md).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from backtest import indicators as ind  # noqa: E402
from backtest.engine import Bars, Costs, run_backtest  # noqa: E402
from backtest.indicators import IndicatorCache  # noqa: E402
from backtest.strategies import STRATEGIES, params_clean  # noqa: E402
from backtest.synthetic import synthetic_bars  # noqa: E402

FAST, SLOW, FEES = 20, 100, 0.0001  # 1 bp: at 10 bps a million bars of round trips leave almost no equity


def best_of(repeats, func):
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def vbt_run(vbt, df, fast=FAST, slow=SLOW):
    """Signals on close, decided one bar before the fill at the open (as ours: warm-up bar excluded)."""
    close, open_ = df["Close"], df["Open"]
    fast_ma = vbt.MA.run(close, fast).ma
    slow_ma = vbt.MA.run(close, slow).ma
    long = np.array(fast_ma > slow_ma, dtype=bool)
    first = max(fast, slow)  # first decision: the bar after the slow SMA is defined (index slow - 1)
    long[:first] = False
    held = np.r_[False, long[:-1]]  # the position wanted during each bar
    prev = np.r_[False, held[:-1]]
    entries, exits = held & ~prev, ~held & prev
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=FEES, init_cash=10_000.0,
                                    size=np.inf, freq="1h")
    stats = (pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown(), pf.trades.closed.count(),
             pf.trades.closed.win_rate())
    return pf, stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    try:
        import vectorbt as vbt
    except ImportError:
        print("vectorbt is not installed: pip install vectorbt==1.2.0 (bench only)")
        return
    warnings.simplefilter("ignore")
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": FAST, "slow": SLOW})
    stops = params_clean(strategy, {"fast": FAST, "slow": SLOW, "stop_loss": 2, "take_profit": 4, "trailing_stop": 3})
    costs = Costs(initial_cash=10_000.0, commission_bps=FEES * 1e4, fractional=True)

    small = synthetic_bars(n=2_000, interval_seconds=3600, seed=3, start_price=30_000)
    t0 = time.perf_counter()
    vbt_run(vbt, small)
    print(f"vectorbt first call (numba compile + run, 2k bars): {(time.perf_counter() - t0) * 1000:,.0f} ms")

    print(f"{'bars':>10s} {'ours ms':>9s} {'vbt ms':>9s} {'ratio':>7s}  trades ours/vbt  final value ours/vbt"
          f"           {'stops ms':>9s} {'stops/plain':>11s}")
    for n in [int(x) for x in args.sizes.split(",")]:
        df = synthetic_bars(n=n, interval_seconds=3600, start="2000-01-01", seed=7, start_price=30_000)
        bars = Bars.from_frame(df)
        repeats = 5 if n <= 100_000 else 2
        ours_s, ours = best_of(repeats, lambda: run_backtest(bars=bars, strategy=strategy, params=params,
                                                             costs=costs, annual_days=365))
        vbt_s, (pf, _) = best_of(repeats, lambda: vbt_run(vbt, df))
        stop_s, _ = best_of(repeats, lambda: run_backtest(bars=bars, strategy=strategy, params=stops, costs=costs,
                                                          annual_days=365))
        theirs_trades = int(pf.trades.closed.count())
        theirs_value = float(pf.value().iloc[-1])
        print(f"{n:>10,} {ours_s * 1000:9.1f} {vbt_s * 1000:9.1f} {vbt_s / ours_s:6.1f}x  "
              f"{len(ours.trades):>6}/{theirs_trades:<6}  {ours.equity[-1]:,.4f}/{theirs_value:,.4f}  "
              f"{stop_s * 1000:9.1f} {stop_s / ours_s:10.1f}x")
        if theirs_trades != len(ours.trades):
            exact = [np.array([math.fsum(df.Close.to_numpy()[i - w + 1:i + 1]) / w for i in range(n - 2000, n)])
                     for w in (FAST, SLOW)]
            theirs_ma = [vbt.MA.run(df["Close"], w).ma.to_numpy()[n - 2000:] for w in (FAST, SLOW)]
            ours_ma = [ind.sma(df.Close.to_numpy(), w)[n - 2000:] for w in (FAST, SLOW)]
            err = lambda got: max(float(np.max(np.abs(g - e) / np.abs(e))) for g, e in zip(got, exact))  # noqa: E731
            print(f"{'':>10s} prices {df.Close.min():.3g} .. {df.Close.max():.3g}; last 2,000 SMAs vs math.fsum: "
                  f"ours max rel. error {err(ours_ma):.1e}, vectorbt {err(theirs_ma):.1e} (its rolling sum drifts)")

    # 1,000-combination sweep over 10k bars, signals + simulation + statistics on both sides
    df = synthetic_bars(n=10_000, interval_seconds=3600, seed=1, start_price=30_000)
    bars = Bars.from_frame(df)
    combos = [(f, s) for f in range(2, 52) for s in range(60, 260, 10)]

    def ours_sweep():
        cache = IndicatorCache()
        return [run_backtest(bars=bars, strategy=strategy, params={"fast": f, "slow": s, "allow_short": False},
                             costs=costs, annual_days=365, cache=cache).metrics["trades"] for f, s in combos]

    def vbt_sweep(combos=combos, df=df):
        close, open_ = df["Close"], df["Open"]
        fast_ma = vbt.MA.run(close, [f for f, _ in combos]).ma.to_numpy()
        slow_ma = vbt.MA.run(close, [s for _, s in combos]).ma.to_numpy()
        long = fast_ma > slow_ma
        for k, (_, s) in enumerate(combos):
            long[:s, k] = False
        held = np.vstack([np.zeros((1, len(combos)), dtype=bool), long[:-1]])
        prev = np.vstack([np.zeros((1, len(combos)), dtype=bool), held[:-1]])
        pf = vbt.Portfolio.from_signals(close.to_numpy()[:, None], held & ~prev, ~held & prev, price=open_.to_numpy()[:, None],
                                        fees=FEES, init_cash=10_000.0, size=np.inf, freq="1h")
        pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown()
        return pf.trades.closed.count().to_numpy()

    t0 = time.perf_counter()
    vbt_sweep(combos[:2], df.iloc[:2_000])  # compiles the two-dimensional path
    print(f"vectorbt first two-dimensional call (numba compile): {(time.perf_counter() - t0) * 1000:,.0f} ms")
    ours_s, ours_counts = best_of(1, ours_sweep)
    vbt_s, vbt_counts = best_of(1, vbt_sweep)
    same = int(np.sum(np.asarray(ours_counts) == np.asarray(vbt_counts)))
    print(f"1,000-combination sweep, 10k bars: ours {ours_s:.2f} s, vectorbt {vbt_s:.2f} s, ratio {vbt_s / ours_s:.1f}x; "
          f"trade counts equal in {same} of 1000")


if __name__ == "__main__":
    main()
