"""A parameter sweep of 1,000 SMA-crossover combinations over 10,000 hourly bars.

Times the same code path the sweep job uses (`run_backtest` with a shared
indicator cache, one process), then the whole job (`services.sweep_execute`:
engine + storing 1,000 results + streaming events) on a throwaway SQLite
database. Reports peak memory. Target: under 10 s on the 2-core machine.

Anchor: one backtest of the sweep, timed alone; the sweep figure is also given
as a ratio to 1,000 × that anchor. Peer anchor: vectorbt's broadcast sweep of the
same 1,000 combinations (bench layer), warm, with the trade counts compared.
The whole job runs on SQLite and, in a child process, on PostgreSQL
(127.0.0.1:5432, database `bench_backtest_sweep`).

The engine and the job are timed in one process and with the pool of worker
processes (`BACKTEST_SWEEP_PROCESSES`, default min(4, cores)); the pool's figure
includes starting its workers.

Run: .venv/bin/python bench/backtest_sweep.py

`--hosts` measures a split sweep (backtest.sweep_chunks) instead: 100,000 combinations over 10,000 bars
(`--combos N` for fewer), queued to real `qcluster` processes on a throwaway SQLite database: one cluster of
1 worker (the anchor), one cluster of 2 workers, and two clusters of 1 worker each standing for two hosts,
each pinned with `taskset -c N` to a core of its own. Prints each wall time (queue to last chunk) and the
speed-up against the 1-worker anchor measured in the same run, with the load average.
`--postgres` runs them on PostgreSQL (database `bench_backtest_hosts`, made afresh) and Redis (db 13, only
the bench's own keys deleted), as several hosts do.
Run: .venv/bin/python bench/backtest_sweep.py --hosts [--postgres] [--combos 20000]
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BARS, FAST, SLOW = 10_000, range(2, 52), range(60, 260, 10)  # 50 × 20 = 1,000 combinations


def engine_sweep():
    from backtest.engine import Bars, Costs, run_backtest
    from backtest.indicators import IndicatorCache
    from backtest.strategies import STRATEGIES
    from backtest.synthetic import synthetic_bars

    bars = Bars.from_frame(synthetic_bars(n=BARS, interval_seconds=3600, seed=1, start_price=30_000))
    strategy = STRATEGIES["sma_cross"]
    costs = Costs(commission_bps=10)
    combos = [{"fast": f, "slow": s, "allow_short": False} for f in FAST for s in SLOW]
    assert len(combos) == 1000

    run_backtest(bars=bars, strategy=strategy, params=combos[0], costs=costs, annual_days=365)  # warm imports
    t0 = time.perf_counter()
    run_backtest(bars=bars, strategy=strategy, params=combos[500], costs=costs, annual_days=365)
    anchor = time.perf_counter() - t0

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    cache = IndicatorCache()
    best = None
    for params in combos:
        result = run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=365, cache=cache)
        sharpe = result.metrics["sharpe"]
        if sharpe is not None and (best is None or sharpe > best[0]):
            best = (sharpe, params)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The Python-heap peak of the loop, on a second (slower, traced) pass over 100 sets.
    tracemalloc.start()
    for params in combos[:100]:
        run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=365, cache=cache)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return anchor, elapsed, (rss_before, rss_after, traced_peak, cpu), best, (bars, strategy, costs, combos)


def engine_sweep_pool(bars, strategy, costs, combos, processes):
    """The same 1,000 backtests in a pool of worker processes (start-up included)."""
    from backtest import conf
    from backtest.sweep_pool import Chunk, SweepPool, chunk_size

    size = chunk_size(bars=len(bars), combos=len(combos), processes=processes, chunk_work=conf.SWEEP_CHUNK_WORK)
    t0 = time.perf_counter()
    best, count = None, 0
    with SweepPool(processes=processes, strategy=strategy.key) as pool:
        pool.wait_started()
        started = time.perf_counter() - t0
        pool.add_bars("b", bars)
        chunks = (Chunk(key="b", costs=costs, annual_days=365, items=list(enumerate(combos[i:i + size], start=i)))
                  for i in range(0, len(combos), size))
        for item in pool.run(chunks):
            if item is None:
                continue
            _, index, metrics = item
            count += 1
            sharpe = metrics["sharpe"]
            if sharpe is not None and (best is None or sharpe > best[0]):
                best = (sharpe, combos[index])
    assert count == len(combos)
    return time.perf_counter() - t0, started, best


def vectorbt_sweep(bars):
    """Peer anchor: vectorbt's broadcast sweep of the same 1,000 SMA crossovers on the same bars, long only,
    10 bps, signals on the close filled at the next open as ours; signals, simulation and the same statistics
    (total return, Sharpe, max drawdown, trades) in one two-dimensional call. Timed warm, best of 2 (its numba
    compile is reported apart). Answers (seconds, compile seconds, trade counts) or None without vectorbt."""
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    import warnings

    import numpy as np
    import pandas as pd

    warnings.simplefilter("ignore")
    close = pd.Series(bars.close)
    open_ = bars.open[:, None]
    combos = [(f, s) for f in FAST for s in SLOW]

    def run(combos=combos, close=close, open_=open_):
        fast_ma = vbt.MA.run(close, [f for f, _ in combos]).ma.to_numpy()
        slow_ma = vbt.MA.run(close, [s for _, s in combos]).ma.to_numpy()
        long = fast_ma > slow_ma
        for k, (_, slow) in enumerate(combos):
            long[:slow, k] = False
        held = np.vstack([np.zeros((1, len(combos)), dtype=bool), long[:-1]])
        prev = np.vstack([np.zeros((1, len(combos)), dtype=bool), held[:-1]])
        pf = vbt.Portfolio.from_signals(close.to_numpy()[:, None], held & ~prev, ~held & prev, price=open_,
                                        fees=0.001, init_cash=10_000.0, size=np.inf, freq="1h")
        pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown()
        return pf.trades.closed.count().to_numpy()

    t0 = time.perf_counter()
    run(combos[:2], close.iloc[:2_000], open_[:2_000])
    compile_s = time.perf_counter() - t0
    best, counts = float("inf"), None
    for _ in range(2):
        t0 = time.perf_counter()
        counts = run()
        best = min(best, time.perf_counter() - t0)
    return best, compile_s, counts


def engine_trade_counts(bars, strategy, costs, combos) -> list[int]:
    from backtest.engine import run_backtest
    from backtest.indicators import IndicatorCache

    cache = IndicatorCache()
    return [run_backtest(bars=bars, strategy=strategy, params=params, costs=costs, annual_days=365,
                         cache=cache).metrics["trades"] for params in combos]


def job_sweep_postgres(processes: int) -> str:
    """The whole job on PostgreSQL (the dedicated database `bench_backtest_sweep`, made afresh), in a child
    process: Django is already set up on SQLite in this one."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, f"--job-on-postgres={processes}"], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        return f"job sweep on PostgreSQL failed: {out.stderr.strip()[-500:]}"
    return out.stdout.strip()


def job_sweep_postgres_child(processes: int) -> None:
    import psycopg

    pg, name = "postgres://postgres@127.0.0.1:5432", "bench_backtest_sweep"
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    use_throwaway_database(f"{pg}/{name}")
    for n, job_s, sweep, job_cpu in job_sweep([processes]):
        print(f"whole sweep job, {n} process(es) (engine + 1,000 stored results + live events, PostgreSQL): "
              f"{job_s:.2f} s ({sweep.done} done, status {sweep.status}, CPU of the job process {job_cpu:.2f} s)")


def use_throwaway_database(database_url=None) -> None:
    """Before anything reads a setting: a throwaway SQLite database and var folder (or `database_url`)."""
    tmp = tempfile.mkdtemp(prefix="bench_backtest_")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["PLATFORM_VAR_DIR"] = tmp
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def job_sweep(processes_list):
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from backtest import market_services, services
    from backtest.models import Sweep

    owner = User.objects.create(username="bench")
    btc = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=btc, interval="1h", bars=BARS, seed=1, start_price=30_000)
    from django.db import transaction

    out = []
    for processes in processes_list:
        with transaction.atomic():  # keep django-q2 from being called: enqueue happens on commit
            sweep = services.sweep_create(
                owner=owner, instruments=[btc], interval="1h", strategy="sma_cross",
                grid={"fast": list(FAST), "slow": list(SLOW)},
            )
            transaction.set_rollback(False)
        Sweep.objects.filter(pk=sweep.pk).update(status="running")
        sweep.refresh_from_db()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        services.sweep_execute(sweep, processes=processes)
        elapsed = time.perf_counter() - t0
        sweep.refresh_from_db()
        out.append((processes, elapsed, sweep, time.process_time() - cpu0))
    return out


def main():
    use_throwaway_database()
    from backtest import conf
    from backtest.sweep_pool import sweep_processes

    anchor, engine_s, peak, best, data = engine_sweep()
    load = [os.getloadavg()[0]]
    print(f"data: {BARS:,} hourly bars, SMA crossover, 1,000 parameter sets (fast 2..51 × slow 60..250), one process")
    print(f"anchor: one backtest                 : {anchor * 1000:8.2f} ms")
    print(f"engine sweep, 1,000 backtests        : {engine_s:8.2f} s  (target < 10 s; "
          f"{engine_s / (1000 * anchor):.2f}× of 1,000 × anchor, shared indicator cache)")
    rss_before, rss_after, traced, cpu = peak
    print(f"  CPU time of the sweep              : {cpu:8.2f} s (wall time suffers when other processes share the 2 cores)")
    print(f"  per backtest                       : {engine_s:8.2f} ms")
    print(f"  peak RSS of the process            : {rss_after:8.1f} MiB (before the sweep {rss_before:.1f} MiB)")
    print(f"  Python heap peak during runs       : {traced / 2**20:8.1f} MiB (tracemalloc)")
    print(f"  best Sharpe {best[0]:.3f} at {best[1]}")
    processes = max(2, conf.SWEEP_PROCESSES)
    pool_s, started, pool_best = engine_sweep_pool(*data, processes)
    assert pool_best == best, (pool_best, best)
    print(f"engine sweep in {processes} worker processes : {pool_s:8.2f} s  (starting the workers {started:.2f} s; "
          f"{engine_s / pool_s:.2f}× of one process; same best)")
    load.append(os.getloadavg()[0])
    default = sweep_processes(work=BARS * 1000, combos=1000)
    try:
        jobs = job_sweep(sorted({1, processes, default}))
    except Exception as exc:  # the engine figure stands alone when Django cannot start
        print(f"job sweep skipped: {exc}")
        return
    for n, job_s, sweep, job_cpu in jobs:
        print(f"whole sweep job, {n} process(es){' (default)' if n == default else ''} "
              f"(engine + 1,000 stored results + live events, SQLite): {job_s:.2f} s "
              f"({sweep.done} done, status {sweep.status}, CPU of the job process {job_cpu:.2f} s)")
    print(job_sweep_postgres(default))
    load.append(os.getloadavg()[0])
    print(f"load average (1 min) while measuring: {', '.join(f'{x:.2f}' for x in load)} on {os.cpu_count()} cores")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak resident memory of the process  : {rss:8.1f} MiB; of the largest worker process {children:.1f} MiB")
    # Last, so that its memory (a few GB of two-dimensional arrays) is not counted as ours above.
    peer = vectorbt_sweep(data[0])
    if peer is None:
        print("peer anchor skipped: vectorbt is not installed (bench layer)")
    else:
        import numpy as np

        peer_s, compile_s, peer_counts = peer
        same = int(np.sum(np.asarray(engine_trade_counts(*data)) == np.asarray(peer_counts)))
        print(f"peer anchor: vectorbt broadcast sweep : {peer_s:8.2f} s  (warm, best of 2; numba compile "
              f"{compile_s:.1f} s apart); ours in one process {engine_s:.2f} s = {peer_s / engine_s:.2f}× its speed; "
              f"trade counts equal in {same} of 1000")
    print(f"load average (1 min) after the peer anchor: {os.getloadavg()[0]:.2f}")


def _hosts_grid(combos: int) -> dict:
    fast = list(range(2, 202))  # 200 fast windows, each below every slow one
    slow = list(range(210, 210 + 2 * max(1, combos // len(fast)), 2))
    return {"fast": fast, "slow": slow}


def hosts_sweeps(combos: int, *, postgres: bool = False) -> None:
    """`postgres`: the database `bench_backtest_hosts` (made afresh) and Redis db 13 under a queue name of
    the bench's own (only its keys are deleted), as several hosts run; else SQLite and the ORM broker."""
    import signal
    import subprocess

    tmp = tempfile.mkdtemp(prefix="bench_backtest_hosts_")
    grid = _hosts_grid(combos)
    total = len(grid["fast"]) * len(grid["slow"])
    database_url, where = f"sqlite:///{tmp}/bench.sqlite3", "SQLite, ORM broker"
    if postgres:
        import psycopg

        pg, name = "postgres://postgres@127.0.0.1:5432", "bench_backtest_hosts"
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url, where = f"{pg}/{name}", "PostgreSQL, Redis broker"
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/13"
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + os.urandom(16).hex())  # shared by its hosts
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ.update({
        "DATABASE_URL": database_url, "PLATFORM_VAR_DIR": tmp,
        "PLATFORM_MEDIA_ROOT": f"{tmp}/media", "DJANGO_SETTINGS_MODULE": "config.settings",
        "BACKTEST_SWEEP_MAX_COMBOS": str(total), "BACKTEST_SWEEP_SPLIT_MIN_WORK": "1",
        "Q_CLUSTER_NAME": f"bench-hosts-{os.getpid()}",
    })
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from backtest import conf, market_services, services
    from backtest.models import Sweep
    from django_q.conf import Conf

    owner = User.objects.create(username="bench")
    btc = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=btc, interval="1h", bars=BARS, seed=1, start_price=30_000)
    chunks = -(-total // max(1, conf.SWEEP_TASK_WORK // BARS))
    root = Path(__file__).resolve().parent.parent
    print(f"split sweep: {total:,} SMA-crossover combinations over {BARS:,} hourly bars, in {chunks} chunk tasks "
          f"of ~{conf.SWEEP_TASK_WORK:,} bar-steps; {where}; {os.cpu_count()} cores")

    def measure(label: str, clusters: list[tuple[int, int | None]]) -> float:
        queue = f"bench{os.getpid()}{label.replace(' ', '')}"
        Conf.CLUSTER_NAME = queue
        procs = []
        for workers, core in clusters:
            env = dict(os.environ, Q_QUEUE_NAME=queue, Q_WORKERS=str(workers), PYTHONUNBUFFERED="1")
            pin = ["taskset", "-c", str(core)] if core is not None else []
            procs.append(subprocess.Popen(pin + [sys.executable, "manage.py", "qcluster"], cwd=root, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        try:
            time.sleep(5)  # the clusters are up and idle before the sweep is queued
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            sweep = services.sweep_create(owner=owner, instruments=[btc], interval="1h", strategy="sma_cross",
                                          grid=grid)
            while True:
                time.sleep(0.2)
                sweep.refresh_from_db()
                if sweep.is_finished:
                    break
            elapsed = time.perf_counter() - t0
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        assert sweep.status == "succeeded" and sweep.done == total, (sweep.status, sweep.error, sweep.done)
        print(f"  {label:<42}: {elapsed:8.2f} s  (load {load0:.2f} → {os.getloadavg()[0]:.2f})")
        Sweep.objects.filter(pk=sweep.pk).delete()
        return elapsed

    anchor = measure("1 worker (anchor)", [(1, None)])
    two = measure("2 worker processes, one cluster", [(2, None)])
    hosts = measure("2 hosts of 1 worker, taskset -c 0 / -c 1", [(1, 0), (1, 1)])
    print(f"speed-up against 1 worker: 2 workers {anchor / two:.2f}×, 2 pinned hosts {anchor / hosts:.2f}×")
    if postgres:
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        mine = set(client.scan_iter(match=f"*{os.environ['Q_CLUSTER_NAME']}*"))  # the platform's keys
        mine |= set(client.scan_iter(match=f"*bench{os.getpid()}*"))  # the queues and held lists
        if mine:
            client.delete(*set(mine))


if __name__ == "__main__":
    if any(a.startswith("--job-on-postgres=") for a in sys.argv):
        job_sweep_postgres_child(int(next(a for a in sys.argv if a.startswith("--job-on-postgres=")).split("=")[1]))
    elif "--hosts" in sys.argv:
        combos = int(sys.argv[sys.argv.index("--combos") + 1]) if "--combos" in sys.argv else 100_000
        hosts_sweeps(combos, postgres="--postgres" in sys.argv)
    else:
        main()
