"""A split sweep in a real django-q2 cluster of 2 worker processes (each could be on its own host): every
chunk runs as its own task, the results equal the in-process engine's, and a cancel stops every chunk."""

import os
import signal
import subprocess
import sys
import time

import pytest

from backtest import market_services, selectors, services
from backtest.engine import Costs, run_backtest
from backtest.models import Sweep, SweepResult
from backtest.strategies import strategy_get
from backtest.sweep_chunks import CHUNK_TASK
from conftest import BASE_DIR, database_url
from core import services as core_services
from core.models import JobEvent

pytestmark = [pytest.mark.e2e]
BARS = 3000
TASK_WORK = 20 * BARS  # chunks of 20 parameter sets


@pytest.fixture
def cluster(transactional_db, monkeypatch, tmp_path, settings):
    """A qcluster of 2 workers on its own queue, splitting every sweep."""
    from django_q.conf import Conf

    queue = f"chunks{os.getpid()}"
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(), "Q_CLUSTER_NAME": settings.Q_CLUSTER["name"], "Q_QUEUE_NAME": queue,
        "Q_WORKERS": "2", "BACKTEST_SWEEP_SPLIT_MIN_WORK": "1", "BACKTEST_SWEEP_TASK_WORK": str(TASK_WORK),
        "PLATFORM_MEDIA_ROOT": str(tmp_path), "PYTHONUNBUFFERED": "1",
    })
    env.pop("PYTEST_VERSION", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=BASE_DIR, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue)
    settings.BACKTEST_SWEEP_SPLIT_MIN_WORK = 1
    settings.BACKTEST_SWEEP_TASK_WORK = TASK_WORK
    yield lambda: log.read_text(errors="replace")[-4000:]
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def btc(transactional_db):
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=BARS, start="2024-01-01", seed=5,
                                  start_price=40_000)
    return instrument


def _finished(sweep: Sweep, timeout: float) -> Sweep:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep.refresh_from_db()
        if sweep.is_finished:
            return sweep
        time.sleep(0.2)
    return sweep


def _chunk_tasks(sweep: Sweep):
    from django_q.models import Task

    return Task.objects.filter(func=CHUNK_TASK, name__startswith=f"backtest.sweep:{sweep.pk}:")


def test_split_sweep_runs_every_chunk_in_the_cluster(cluster, user, btc):
    grid = {"fast": {"start": 2, "stop": 41, "step": 1}, "slow": [50, 80, 120, 200]}  # 160 sets: 8 chunks
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=grid)
    sweep = _finished(sweep, 180)
    assert sweep.status == "succeeded", (sweep.error, cluster())
    assert sweep.done == sweep.total == 160 and "in chunk tasks" in sweep.message
    deadline = time.monotonic() + 20
    while _chunk_tasks(sweep).count() < 8 and time.monotonic() < deadline:
        time.sleep(0.2)
    tasks = list(_chunk_tasks(sweep))
    assert len(tasks) == 8 and all(t.success for t in tasks), cluster()
    assert sum(t.result for t in tasks) == 160
    assert sorted(SweepResult.objects.filter(sweep=sweep).values_list("index", flat=True)) == list(range(160))
    events = JobEvent.objects.filter(job_kind="backtest.sweep", job_id=sweep.pk, kind="result")
    assert sorted(e.data["seq"] for e in events) == list(range(1, 161))
    # the numbers of the in-process engine, for every combination
    bars = selectors.bars_load(instrument=btc, interval="1h")
    strategy = strategy_get("sma_cross")
    for row in SweepResult.objects.filter(sweep=sweep):
        assert row.params == sweep.param_sets[row.index]
        assert row.metrics == run_backtest(bars=bars, strategy=strategy, params=row.params,
                                           costs=Costs(commission_bps=10), annual_days=365).metrics


def test_cancel_stops_every_chunk_in_the_cluster(cluster, user, btc):
    grid = {"fast": {"start": 2, "stop": 100, "step": 1}, "slow": {"start": 110, "stop": 600, "step": 10}}
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=grid)
    deadline = time.monotonic() + 120
    while not SweepResult.objects.filter(sweep=sweep).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert SweepResult.objects.filter(sweep=sweep).exists(), cluster()
    core_services.job_cancel(job=Sweep.objects.get(pk=sweep.pk), by=user)
    sweep = _finished(sweep, 30)
    assert sweep.status == "cancelled", cluster()
    stored = SweepResult.objects.filter(sweep=sweep).count()
    assert 0 < stored < sweep.total and sweep.done == stored
    time.sleep(3)  # chunks still queued or running stop, and store nothing more
    assert SweepResult.objects.filter(sweep=sweep).count() == stored
    assert Sweep.objects.get(pk=sweep.pk).status == "cancelled"
