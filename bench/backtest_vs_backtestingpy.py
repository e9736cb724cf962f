"""Our engine vs backtesting.py: one SMA-crossover backtest over 100,000 hourly bars.

Same data, same semantics (signal on close, fill at next open, all-in whole
units, commission on entry and exit, open trade left open at the end).
Prints both timings, the speed ratio, whether the trades are identical, and
every metric both libraries compute side by side.

Run: .venv/bin/python bench/backtest_vs_backtestingpy.py [--bars N]
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


def reference_run(df: pd.DataFrame):
    from backtesting import Backtest, Strategy

    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self):
            if self.fast[-1] > self.slow[-1]:
                if not self.position.is_long:
                    self.position.close()
                    self.buy()
            elif self.position.is_long:
                self.position.close()

    bt = Backtest(df, SmaCross, cash=CASH, commission=COMMISSION, finalize_trades=False)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=100_000)
    args = parser.parse_args()

    df = synthetic_bars(n=args.bars, interval_seconds=3600, start="2012-01-01", seed=7, start_price=20_000.0, kind="crypto")
    bars = Bars.from_frame(df)
    strategy = STRATEGIES["sma_cross"]
    params = params_clean(strategy, {"fast": FAST, "slow": SLOW})
    costs = Costs(initial_cash=CASH, commission_bps=COMMISSION * 1e4, fractional=False)

    run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=365)  # warm-up imports
    t0 = time.perf_counter()
    ours = run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=365)
    ours_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = reference_run(df)
    ref_s = time.perf_counter() - t0

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
    print(f"ours (anchor run)        : {ours_s * 1000:9.1f} ms")
    print(f"backtesting.py 0.6       : {ref_s * 1000:9.1f} ms")
    print(f"speed ratio              : {ref_s / ours_s:9.1f}x faster (target >= 20x)")
    print(f"trades                   : ours {len(ours_trades)}, backtesting.py {len(ref_trades)}; "
          f"same entry/exit bars: {same_bars}; same sizes: {same_sizes}")
    print(f"final equity             : ours {eq_ours:,.6f}, backtesting.py {eq_ref:,.6f}, relative difference {rel:.2e} (target < 1e-6)")
    print(f"equity curve max rel diff: {curve_rel:.2e}")
    print()
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
