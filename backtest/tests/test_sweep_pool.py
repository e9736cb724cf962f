"""Sweeps in a pool of worker processes: same results as in-process, cancel, worker loss, errors,
and no worker outliving its job."""

import functools
import os
import signal

import pytest

from backtest import services
from backtest.engine import Costs
from backtest.models import Sweep
from backtest.sweep_pool import Chunk, SweepPool, SweepWorkerLost, chunk_size, sweep_processes
from core.models import JobStatus

GRID = {"fast": list(range(3, 23)), "slow": [30, 45, 60]}


def _process_tree() -> dict[int, int]:
    tree = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            try:
                with open(f"/proc/{name}/cmdline") as f:
                    helper = "resource_tracker" in f.read()
            except OSError:
                continue
            # a zombie about to be reaped is not a running worker; multiprocessing's resource
            # tracker is one idle helper per process (it exits with it), not part of a pool
            if fields[0] != "Z" and not helper:
                tree[int(name)] = int(fields[1])
    return tree


def _children(root: int | None = None) -> set[int]:
    """Live descendants of `root` (default: this process), read from /proc."""
    tree, found, frontier = _process_tree(), set(), {root or os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in tree.items() if ppid in frontier} - found
        found |= frontier
    return found


def _run(sweep, **kwargs):
    from backtest import tasks

    original = services.sweep_execute
    services.sweep_execute = functools.partial(original, **kwargs)
    try:
        tasks.sweep_execute(sweep.pk)
    finally:
        services.sweep_execute = original
    sweep.refresh_from_db()
    return sweep


def _metrics_by_combo(sweep) -> dict:
    return {(r.instrument.symbol, tuple(sorted(r.params.items()))): r.metrics
            for r in sweep.results.select_related("instrument")}


@pytest.mark.django_db
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_pool_gives_the_same_metrics_as_one_process(user, btc, start_method, monkeypatch):
    from backtest import conf

    monkeypatch.setattr(conf, "SWEEP_START_METHOD", start_method)
    before = _children()
    sweeps = {}
    for processes in (1, 2):
        sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=GRID)
        sweeps[processes] = _run(sweep, processes=processes, flush_rows=7)
    one, two = sweeps[1], sweeps[2]
    assert one.status == two.status == JobStatus.SUCCEEDED, (one.error, two.error)
    assert one.done == two.done == two.results.count() == 60
    assert "in 2 processes" in two.message and "processes" not in one.message
    assert _metrics_by_combo(one) == _metrics_by_combo(two)
    # events: one per result, seq 1..60 in completion order, params match the stored rows
    from core.models import JobEvent

    events = list(JobEvent.objects.filter(job_kind=two.kind, job_id=two.pk, kind="result").order_by("seq"))
    assert [e.data["seq"] for e in events] == list(range(1, 61))
    left = _children() - before
    assert not left, [open(f"/proc/{p}/cmdline").read() for p in left]  # the pool is gone


@pytest.mark.django_db
def test_pool_over_two_instruments(user, btc):
    from backtest import market_services

    eth = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=eth, interval="1h", bars=900, seed=9, start_price=2000)
    runs = []
    for processes in (1, 2):
        sweep = services.sweep_create(owner=user, instruments=[btc, eth], interval="1h", strategy="ema_cross",
                                      grid={"fast": [4, 8, 12], "slow": [30, 50]})
        runs.append(_run(sweep, processes=processes))
    assert runs[1].results.count() == 12
    assert _metrics_by_combo(runs[0]) == _metrics_by_combo(runs[1])


@pytest.mark.django_db
def test_cancel_terminates_the_pool_promptly(user, btc, monkeypatch):
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": list(range(2, 100)), "slow": list(range(110, 400, 10))})
    seen: dict = {}
    original = services.job_progress
    before = _children()  # long-lived helpers of this test process (e.g. the script runner's sandbox view)

    def progress_then_cancel(*, job, fraction=None, message=None):
        original(job=job, fraction=fraction, message=message)
        if job.done and "pids" not in seen:
            seen["pids"] = _children() - before
            from core.services import job_cancel

            job_cancel(job=Sweep.objects.get(pk=job.pk), by=user)

    monkeypatch.setattr(services, "job_progress", progress_then_cancel)
    sweep = _run(sweep, processes=2, flush_rows=10, flush_seconds=0.05)
    assert sweep.status == JobStatus.CANCELLED
    assert 0 < sweep.done < sweep.total and sweep.results.count() == sweep.done
    assert seen["pids"], "the pool had workers while it ran"
    assert not (_children() & seen["pids"]), "no worker outlives the cancelled job"


@pytest.mark.django_db
def test_job_marked_failed_elsewhere_stops_the_pool(user, btc, monkeypatch):
    """Recovery marked the job failed (worker lost) while it still ran here: computing stops."""
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": list(range(2, 100)), "slow": list(range(110, 400, 10))})
    original = services.job_progress

    def progress_then_lost(*, job, fraction=None, message=None):
        original(job=job, fraction=fraction, message=message)
        if job.done:
            Sweep.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="worker lost")

    monkeypatch.setattr(services, "job_progress", progress_then_lost)
    before = _children()
    sweep = _run(sweep, processes=2, flush_rows=10, flush_seconds=0.05)
    assert sweep.status == JobStatus.FAILED and "worker lost" in sweep.error
    assert sweep.done < sweep.total
    assert _children() <= before


def _chunks(bars, items, size=2):
    for first in range(0, len(items), size):
        yield Chunk(key="x", costs=Costs(commission_bps=10), annual_days=365,
                    items=list(enumerate(items[first:first + size], start=first)))


@pytest.mark.django_db
def test_a_killed_worker_fails_the_sweep_and_takes_the_pool_down(btc):
    from backtest import selectors

    bars = selectors.bars_load(instrument=btc, interval="1h")
    params = [{"fast": f, "slow": 200, "allow_short": False} for f in range(2, 60)]
    before = _children()
    with pytest.raises(SweepWorkerLost, match="worker process died"):
        with SweepPool(processes=2, strategy="sma_cross", tick=0.05) as pool:
            pool.add_bars("x", bars)
            pids = pool.pids()
            assert len(pids) == 2
            for n, item in enumerate(pool.run(_chunks(bars, params, size=1))):
                if n == 1:
                    os.kill(pids[0], signal.SIGKILL)
    assert not (_children() - before)


@pytest.mark.django_db
def test_an_error_in_a_worker_propagates_and_the_pool_closes(btc):
    from backtest import selectors

    bars = selectors.bars_load(instrument=btc, interval="1h")
    before = _children()
    with pytest.raises(TypeError):
        with SweepPool(processes=2, strategy="sma_cross") as pool:
            pool.add_bars("x", bars)
            list(pool.run(_chunks(bars, [{"fast": "ten", "slow": 30, "allow_short": False}])))
    assert not (_children() - before)


def test_chunk_size_balances_and_bounds_work():
    assert chunk_size(bars=10_000, combos=1000, processes=2, chunk_work=2_000_000) == 125
    assert chunk_size(bars=100_000, combos=1000, processes=2, chunk_work=2_000_000) == 20
    assert chunk_size(bars=10_000_000, combos=5, processes=4, chunk_work=2_000_000) == 1


def test_small_sweeps_stay_in_process(settings):
    from backtest import conf

    assert sweep_processes(work=conf.SWEEP_PARALLEL_MIN_WORK - 1, combos=100) == 1
    assert sweep_processes(work=conf.SWEEP_PARALLEL_MIN_WORK, combos=1) == 1
    if conf.SWEEP_PROCESSES > 1:
        assert sweep_processes(work=conf.SWEEP_PARALLEL_MIN_WORK, combos=100) == conf.SWEEP_PROCESSES
