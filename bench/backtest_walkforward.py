"""Walk-forward optimization: 20 windows × 100 parameter sets on 100,000 hourly bars (target under 10 s).

Rolling windows of 20,000 in-sample and 4,000 out-of-sample bars, step 4,000: 20 windows whose out-of-sample
parts cover the last 80,000 bars; in each, 100 SMA-crossover sets (fast 5..50 × slow 60..240) are backtested on
the in-sample bars, the best by Sharpe trades the out-of-sample bars. Timed:

1. the engine (`backtest.walkforward.walkforward_compute`, one process, as the job runs it);
2. the whole job (`walkforward_services.walkforward_execute`: bars read from the database, live progress and
   one event per window, the result stored) on a throwaway SQLite database;
3. the anchored variant of 1 (in-sample parts growing from 20,000 to 96,000 bars: 2.9× the work).

Anchor, measured in the same run: the 2,000 in-sample backtests alone (a plain loop of `run_backtest` over the
same slices with a shared indicator cache per slice); the walk-forward figure is also given as a ratio to it,
which is what choosing, the out-of-sample runs and stitching add.

Run: .venv/bin/python bench/backtest_walkforward.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BARS, IS, OOS = 100_000, 20_000, 4_000
GRID = {"fast": list(range(5, 55, 5)), "slow": list(range(60, 260, 20))}  # 10 × 10 = 100 sets
TARGET_S = 10.0


def data():
    from backtest.engine import Bars, Costs
    from backtest.strategies import STRATEGIES
    from backtest.synthetic import synthetic_bars

    bars = Bars.from_frame(synthetic_bars(n=BARS, interval_seconds=3600, seed=5, start_price=30_000))
    strategy = STRATEGIES["sma_cross"]
    # The grid as the job expands it (grid order: the last parameter varies fastest).
    sets = [{"fast": f, "slow": s, "allow_short": False} for f in GRID["fast"] for s in GRID["slow"]]
    assert len(sets) == 100
    return bars, strategy, sets, Costs(commission_bps=10)


def anchor_loop(bars, strategy, sets, costs, windows) -> float:
    from backtest.engine import run_backtest
    from backtest.indicators import IndicatorCache
    from backtest.walkforward import bars_slice

    t0 = time.perf_counter()
    for w in windows:
        sample = bars_slice(bars, w.is_start, w.is_end)
        cache = IndicatorCache()
        for params in sets:
            run_backtest(bars=sample, strategy=strategy, params=params, costs=costs, annual_days=365, cache=cache)
    return time.perf_counter() - t0


def engine(bars, strategy, sets, costs, mode):
    from backtest.walkforward import walkforward_compute, windows_plan

    windows = windows_plan(bars=len(bars), mode=mode, in_sample=IS, out_of_sample=OOS)
    t0 = time.perf_counter()
    result = walkforward_compute(bars=bars, windows=windows, strategy=strategy, param_sets=sets, metric="sharpe",
                                 costs=costs, annual_days=365)
    return time.perf_counter() - t0, windows, result


def job():
    tmp = tempfile.mkdtemp(prefix="bench_walkforward_")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["PLATFORM_VAR_DIR"] = tmp
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from backtest import market_services, walkforward_services
    from backtest.models import WalkForward

    owner = User.objects.create(username="bench")
    btc = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=btc, interval="1h", bars=BARS, seed=5, start_price=30_000)
    with transaction.atomic():  # keep django-q2 from being called: enqueue happens on commit
        wf = walkforward_services.walkforward_create(
            owner=owner, instrument=btc, interval="1h", strategy="sma_cross", grid=GRID, in_sample_bars=IS,
            out_of_sample_bars=OOS)
        transaction.set_rollback(False)
    WalkForward.objects.filter(pk=wf.pk).update(status="running")
    wf.refresh_from_db()
    t0 = time.perf_counter()
    walkforward_services.walkforward_execute(wf)
    elapsed = time.perf_counter() - t0
    wf.refresh_from_db()
    return elapsed, wf


def main():
    load = [os.getloadavg()[0]]
    bars, strategy, sets, costs = data()
    engine(bars, strategy, sets[:1], costs, "rolling")  # warm imports and caches of the first call
    rolling_s, windows, result = engine(bars, strategy, sets, costs, "rolling")
    anchor_s = anchor_loop(bars, strategy, sets, costs, windows)
    load.append(os.getloadavg()[0])
    print(f"data: {BARS:,} hourly bars; rolling windows of {IS:,} in-sample + {OOS:,} out-of-sample bars, step {OOS:,}; "
          f"{len(windows)} windows × {len(sets)} SMA-crossover sets, chosen by Sharpe")
    print(f"anchor: the {len(windows) * len(sets):,} in-sample backtests alone : {anchor_s:7.2f} s")
    print(f"walk-forward, engine, one process          : {rolling_s:7.2f} s  (target < {TARGET_S:g} s: "
          f"{TARGET_S / rolling_s:.1f}× under it; {rolling_s / anchor_s:.2f}× the anchor)")
    m = result.metrics
    print(f"  stitched out-of-sample: {len(result.equity):,} bars, {m['trades']} trades, return {m['return_pct']:.2f} %, "
          f"Sharpe {m['sharpe']:.2f}")
    try:
        job_s, wf = job()
    except Exception as exc:  # the engine figure stands alone when Django cannot start
        print(f"job skipped: {exc}")
    else:
        load.append(os.getloadavg()[0])
        same = [w["params"] for w in wf.windows] == [w.params for w in result.windows]
        print(f"whole walk-forward job (bars from SQLite, live progress and events, result stored): {job_s:.2f} s  "
              f"({TARGET_S / job_s:.1f}× under the target; status {wf.status}, {wf.windows_done} windows, "
              f"same choices as the engine: {same})")
    anchored_s, anchored_windows, _ = engine(bars, strategy, sets, costs, "anchored")
    load.append(os.getloadavg()[0])
    work = sum(w.is_end - w.is_start for w in anchored_windows) / sum(w.is_end - w.is_start for w in windows)
    print(f"anchored walk-forward, engine              : {anchored_s:7.2f} s  ({work:.1f}× the in-sample bars of "
          f"rolling; {anchored_s / rolling_s:.2f}× its time)")
    print(f"load average (1 min) while measuring: {', '.join(f'{x:.2f}' for x in load)} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
