"""Our engine vs backtesting.py (and vectorbt when installed).

1. Speed: one SMA-crossover backtest over 100,000 hourly bars, the best of several runs on each side,
   and the ratio (target >= 100x).
2. backtesting.py's README example, `SmaCross(10, 20)` on its bundled GOOG data with
   `exclusive_orders=True`, against ours with `entry: "cross"`, `allow_short`, 20 bps, cash 10,000:
   the same closed trades and the same final equity. (The same check runs through
   `POST /api/backtest/runs/` in backtest/tests/test_vs_backtestingpy.py.)
3. Trade identity of the SMA cross at 10k and 100k bars (and 1M with --million), where a plain
   cumulative-sum SMA used to drift.
4. Stop-loss and take-profit: backtesting.py's `sl=` / `tp=` are absolute prices set when the order is placed,
   ours are distances from the fill. On bars that each open at the previous close the two are the same rule
   (the fill is the signal close), so the trades must be identical: SMA(10/30) crossover entries with a 3 %
   stop, a 6 % target, both, long only and with shorts, 20 bps, cash 10,000, whole units.
5. Every metric both libraries compute, side by side.

Same data, same semantics (signal on close, fill at next open, all-in whole units, commission on
entry and exit, open trade left open at the end).

Run: .venv/bin/python bench/backtest_vs_backtestingpy.py [--bars N] [--million]
Needs `backtesting` (requirements/bench.txt).
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
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py shows progress bars when tqdm is installed

from backtest.engine import Bars, Costs, run_backtest  # noqa: E402
from backtest.strategies import STRATEGIES, params_clean  # noqa: E402
from backtest.synthetic import synthetic_bars  # noqa: E402

FAST, SLOW = 20, 100
COMMISSION = 0.001  # 10 bps
CASH = 1_000_000.0

# backtesting.py label -> (our key, scale applied to ours for comparison)
PAIRS = {
    "Exposure Time [%]": "exposure_pct",
    "Equity Final [$]": "equity_final",
    "Equity Peak [$]": "equity_peak",
    "Commissions [$]": "commissions",
    "Return [%]": "return_pct",
    "Buy & Hold Return [%]": "buy_hold_return_pct",
    "Return (Ann.) [%]": "return_ann_pct",
    "Volatility (Ann.) [%]": "volatility_ann_pct",
    "CAGR [%]": "cagr_pct",
    "Sharpe Ratio": "sharpe",
    "Sortino Ratio": "sortino",
    "Calmar Ratio": "calmar",
    "Alpha [%]": "alpha_pct",
    "Beta": "beta",
    "Max. Drawdown [%]": "max_drawdown_pct",
    "Avg. Drawdown [%]": "avg_drawdown_pct",
    "Max. Drawdown Duration": "max_drawdown_days",
    "Avg. Drawdown Duration": "avg_drawdown_days",
    "# Trades": "trades",
    "Win Rate [%]": "win_rate_pct",
    "Best Trade [%]": "best_trade_pct",
    "Worst Trade [%]": "worst_trade_pct",
    "Avg. Trade [%]": "avg_trade_pct",
    "Max. Trade Duration": "max_trade_days",
    "Avg. Trade Duration": "avg_trade_days",
    "Profit Factor": "profit_factor",
    "Expectancy [%]": "expectancy_pct",
    "SQN": "sqn",
    "Kelly Criterion": "kelly",
}


def reference_run(df: pd.DataFrame, fast: int = FAST, slow: int = SLOW, short: bool = False, cash: float = CASH):
    from backtesting import Backtest, Strategy

    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, fast)
            self.slow = self.I(sma, self.data.Close, slow)

        def next(self):
            if self.fast[-1] > self.slow[-1]:
                if not self.position.is_long:
                    self.position.close()
                    self.buy()
            elif short:
                if not self.position.is_short:
                    self.position.close()
                    self.sell()
            elif self.position.is_long:
                self.position.close()

    bt = Backtest(df, SmaCross, cash=cash, commission=COMMISSION, finalize_trades=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bt.run()


def as_number(value) -> float:
    if isinstance(value, pd.Timedelta):
        return value.total_seconds() / 86400
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def best_of(repeats: int, func):
    """(seconds of the fastest call, its result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def readme_check() -> None:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import GOOG, SMA

    class SmaCross(Strategy):
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
        ref_s, ref = best_of(1, lambda: Backtest(GOOG, SmaCross, cash=10_000, commission=0.002,
                                                 exclusive_orders=True).run())
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": 10, "slow": 20, "allow_short": True, "entry": "cross"})
    bars = Bars.from_frame(GOOG)
    costs = Costs(initial_cash=10_000, commission_bps=20, fractional=False)
    ours_s, ours = best_of(5, lambda: run_backtest(bars=bars, strategy=strategy, params=params, costs=costs,
                                                   annual_days=252))
    theirs = ref["_trades"]
    same = (len(theirs) == len(ours.trades)
            and np.array_equal(theirs["EntryBar"].to_numpy(), ours.trades.entry_bar)
            and np.array_equal(theirs["ExitBar"].to_numpy(), ours.trades.exit_bar)
            and np.array_equal(theirs["Size"].to_numpy(), ours.trades.size * ours.trades.side)
            and np.array_equal(theirs["EntryPrice"].to_numpy(), ours.trades.entry_price)
            and np.array_equal(theirs["ExitPrice"].to_numpy(), ours.trades.exit_price))
    print(f"README SmaCross(10, 20) on GOOG ({len(GOOG)} daily bars), entry=cross, shorts, 20 bps, cash 10,000:")
    print(f"  closed trades: ours {len(ours.trades)}, backtesting.py {len(theirs)}; identical (bars, sizes, prices): {same}")
    print(f"  final equity : ours {ours.equity[-1]:,.6f}, backtesting.py {float(ref['Equity Final [$]']):,.6f}")
    print(f"  time         : ours {ours_s * 1000:.2f} ms, backtesting.py {ref_s * 1000:.0f} ms, "
          f"ratio {ref_s / ours_s:.0f}x")


def identity_check(sizes: list[int]) -> None:
    print("SMA(10/30) cross with shorts, whole units, 10 bps: trade identity with backtesting.py")
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": 10, "slow": 30, "allow_short": True})
    for n in sizes:
        df = synthetic_bars(n=n, interval_seconds=3600, start="2000-01-01", seed=13, start_price=100.0)
        bars = Bars.from_frame(df)
        costs = Costs(initial_cash=1e9, commission_bps=COMMISSION * 1e4, fractional=False)
        ours_s, ours = best_of(3, lambda: run_backtest(bars=bars, strategy=strategy, params=params, costs=costs,
                                                       annual_days=365))
        ref_s, ref = best_of(1, lambda: reference_run(df, fast=10, slow=30, short=True, cash=1e9))
        theirs = ref["_trades"]
        same = len(theirs) == len(ours.trades) and np.array_equal(theirs["EntryBar"].to_numpy(), ours.trades.entry_bar)
        rel = abs(ours.equity[-1] - float(ref["Equity Final [$]"])) / float(ref["Equity Final [$]"])
        print(f"  {n:>9,} bars (price {df.Close.min():,.2f} .. {df.Close.max():,.2f}): trades ours {len(ours.trades)}, "
              f"backtesting.py {len(theirs)}, identical entry bars {same}, final equity rel. diff {rel:.1e}; "
              f"ours {ours_s * 1000:.1f} ms, backtesting.py {ref_s * 1000:.0f} ms, ratio {ref_s / ours_s:.0f}x")


def gapless(df: pd.DataFrame) -> pd.DataFrame:
    """The same bars, each opening at the previous close (high and low widened to hold it)."""
    df = df.copy()
    df["Open"] = df["Close"].shift(1).fillna(df["Open"])
    df["High"] = df[["High", "Open", "Close"]].max(axis=1)
    df["Low"] = df[["Low", "Open", "Close"]].min(axis=1)
    return df


def stops_reference(df: pd.DataFrame, *, stop_loss: float, take_profit: float, short: bool):
    """backtesting.py: SMA(10/30) `crossover()` entries, the stop and target set from the signal close."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    def levels(close: float, side: int) -> dict:
        out = {}
        if stop_loss:
            out["sl"] = close - close * stop_loss / 100 if side > 0 else close + close * stop_loss / 100
        if take_profit:
            out["tp"] = close + close * take_profit / 100 if side > 0 else close - close * take_profit / 100
        return out

    class SmaCrossStops(Strategy):
        def init(self):
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 30)

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
        return Backtest(df, SmaCrossStops, cash=10_000, commission=0.002, exclusive_orders=True,
                        finalize_trades=False).run()


def stops_check() -> None:
    from backtest.fills import EXIT_REASONS

    df = gapless(synthetic_bars(n=4000, interval_seconds=86400, start="2010-01-04", seed=5, start_price=100.0,
                                kind="stock"))
    bars = Bars.from_frame(df)
    strategy = STRATEGIES["sma_cross"]
    costs = Costs(initial_cash=10_000, commission_bps=20, fractional=False)
    print(f"Stops and targets vs backtesting.py's sl=/tp= ({len(df):,} daily bars opening at the previous close, "
          "SMA(10/30) cross entries, 20 bps, cash 10,000, whole units):")
    for stop_loss, take_profit, short in [(3.0, 0.0, False), (3.0, 0.0, True), (0.0, 6.0, True), (2.5, 5.0, False),
                                          (2.5, 5.0, True)]:
        params = params_clean(strategy, {"fast": 10, "slow": 30, "allow_short": short, "entry": "cross",
                                         "stop_loss": stop_loss, "take_profit": take_profit})
        ours_s, ours = best_of(3, lambda: run_backtest(bars=bars, strategy=strategy, params=params, costs=costs,
                                                       annual_days=252))
        ref_s, ref = best_of(1, lambda: stops_reference(df, stop_loss=stop_loss, take_profit=take_profit, short=short))
        theirs, t = ref["_trades"], ours.trades
        same = (len(theirs) == len(t)
                and np.array_equal(theirs["EntryBar"].to_numpy(), t.entry_bar)
                and np.array_equal(theirs["ExitBar"].to_numpy(), t.exit_bar)
                and np.array_equal(theirs["Size"].to_numpy(), t.size * t.side)
                and np.array_equal(theirs["EntryPrice"].to_numpy(), t.entry_price)
                and np.array_equal(theirs["ExitPrice"].to_numpy(), t.exit_price))
        reasons = [EXIT_REASONS[r] for r in t.reason]
        rel = abs(ours.equity[-1] - float(ref["Equity Final [$]"])) / float(ref["Equity Final [$]"])
        print(f"  stop {stop_loss:g} %, target {take_profit:g} %, {'with shorts' if short else 'long only '}: "
              f"trades ours {len(t)}, backtesting.py {len(theirs)} ({reasons.count('stop')} stops, "
              f"{reasons.count('target')} targets); identical (bars, sizes, prices): {same}; final equity rel. diff "
              f"{rel:.1e}; ours {ours_s * 1000:.1f} ms, backtesting.py {ref_s * 1000:.0f} ms, ratio {ref_s / ours_s:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="also check trade identity at 1,000,000 bars")
    args = parser.parse_args()

    df = synthetic_bars(n=args.bars, interval_seconds=3600, start="2012-01-01", seed=7, start_price=20_000.0, kind="crypto")
    bars = Bars.from_frame(df)
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": FAST, "slow": SLOW})
    costs = Costs(initial_cash=CASH, commission_bps=COMMISSION * 1e4, fractional=False)

    run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=365)  # warm-up imports
    ours_s, ours = best_of(10, lambda: run_backtest(bars=bars, strategy=strategy, params=params, costs=costs,
                                                    annual_days=365))
    ref_s, ref = best_of(2, lambda: reference_run(df))

    ref_trades = ref["_trades"]
    ours_trades = ours.trades
    same_count = len(ref_trades) == len(ours_trades)
    same_bars = same_count and np.array_equal(ref_trades["EntryBar"].to_numpy(), ours_trades.entry_bar) and np.array_equal(
        ref_trades["ExitBar"].to_numpy(), ours_trades.exit_bar
    )
    same_sizes = same_count and np.array_equal(ref_trades["Size"].abs().to_numpy(), ours_trades.size)
    eq_ref = float(ref["Equity Final [$]"])
    eq_ours = float(ours.equity[-1])
    rel = abs(eq_ours - eq_ref) / abs(eq_ref)
    curve_rel = float(np.max(np.abs(ref["_equity_curve"]["Equity"].to_numpy() - ours.equity) / np.abs(ours.equity)))

    print(f"data: {args.bars} hourly bars, SMA({FAST}/{SLOW}) long-only, commission {COMMISSION * 1e4:g} bps, cash {CASH:,.0f}")
    print(f"ours (anchor, best of 10): {ours_s * 1000:9.1f} ms")
    print(f"backtesting.py (best of 2): {ref_s * 1000:8.1f} ms")
    print(f"speed ratio              : {ref_s / ours_s:9.1f}x faster (target >= 100x)")
    print(f"trades                   : ours {len(ours_trades)}, backtesting.py {len(ref_trades)}; "
          f"same entry/exit bars: {same_bars}; same sizes: {same_sizes}")
    print(f"final equity             : ours {eq_ours:,.6f}, backtesting.py {eq_ref:,.6f}, relative difference {rel:.2e} (target < 1e-6)")
    print(f"equity curve max rel diff: {curve_rel:.2e}")
    print()
    readme_check()
    print()
    identity_check([10_000, 100_000] + ([1_000_000] if args.million else []))
    print()
    stops_check()
    print()
    print("Exposure and commissions count the trade still open at the end (backtesting.py leaves it out).")
    print(f"{'metric':28s} {'ours':>18s} {'backtesting.py':>18s} {'rel. diff':>10s}")
    for label, key in PAIRS.items():
        theirs = as_number(ref.get(label))
        mine = ours.metrics.get(key)
        mine = float("nan") if mine is None else float(mine)
        if np.isnan(theirs) and np.isnan(mine):
            diff = "both n/a"
        elif np.isnan(theirs) or np.isnan(mine):
            diff = "MISMATCH"
        else:
            diff = f"{abs(mine - theirs) / max(abs(theirs), 1e-12):.1e}"
        print(f"{label:28s} {mine:18.6f} {theirs:18.6f} {diff:>10s}")


if __name__ == "__main__":
    main()
