"""A sweep computed by a pool of worker processes inside the real django-q2 worker
(non-daemonic, as configured): results stream, match the in-process engine, cancel works, and no pool process outlives
the job."""

import asyncio
import os
import threading
import time

import pytest

from backtest import market_services, selectors
from backtest.engine import Costs, run_backtest
from backtest.models import Sweep
from backtest.strategies import strategy_get
from backtest.tests.test_sweep_pool import _children
from tests.e2e.test_backtest_sweep import _stream

# The live worker runs with BACKTEST_SWEEP_PROCESSES=2 (set by the live_platform fixture), so the
# pool is exercised whatever this machine's core count.
LIVE_PROCESSES = 2
pytestmark = [pytest.mark.e2e]


@pytest.fixture
def btc(transactional_db):
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=10_000, start="2024-01-01", seed=5,
                                  start_price=40_000)
    return instrument


def _worker_tree(live_platform) -> set[int]:
    return _children(live_platform.processes[1].pid)


def _settled(live_platform, baseline: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        extra = _worker_tree(live_platform) - baseline
        if not extra:
            return extra
        time.sleep(0.2)
    return extra


def test_pooled_sweep_in_the_real_worker(live_platform, user, btc, auth_client):
    client = auth_client(user)
    baseline = _worker_tree(live_platform)
    during: dict = {"tree": set()}
    watching = threading.Event()

    def watch():  # sample the worker's process tree while the sweep runs
        while not watching.is_set():
            extra = _worker_tree(live_platform) - baseline
            if len(extra) > len(during["tree"]):
                during["tree"] = extra
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    grid = {"fast": {"start": 2, "stop": 61, "step": 1}, "slow": [70, 90, 120, 160, 200, 250, 300, 400, 500, 600]}
    created = client.post("/api/backtest/sweeps/", {
        "symbols": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross", "grid": grid,
    }, format="json").json()
    assert created["total"] == 600  # 10,000 bars × 600 sets: above BACKTEST_SWEEP_PARALLEL_MIN_WORK
    url = f"{live_platform.ws_url}{created['stream']}"
    messages = asyncio.run(_stream(url, client.token))
    watching.set()
    watcher.join(5)
    results = [m for m in messages if m["type"] == "event" and m["kind"] == "result"]
    sweep = Sweep.objects.get(pk=created["id"])
    assert sweep.status == "succeeded", (sweep.error, live_platform.output())
    assert f"in {LIVE_PROCESSES} processes" in sweep.message
    assert sorted(m["data"]["seq"] for m in results) == list(range(1, 601))
    assert len(during["tree"]) >= 2, "the pool's workers ran under the django-q2 worker"
    assert not _settled(live_platform, baseline), "no pool process outlives its job"
    # the same numbers as the in-process engine
    bars = selectors.bars_load(instrument=btc, interval="1h")
    strategy = strategy_get("sma_cross")
    for row in sweep.results.order_by("?")[:5]:
        mine = run_backtest(bars=bars, strategy=strategy, params=row.params, costs=Costs(commission_bps=10),
                            annual_days=365).metrics
        assert row.metrics == mine


def test_cancel_tears_the_pool_down_in_the_real_worker(live_platform, user, btc, auth_client):
    client = auth_client(user)
    baseline = _worker_tree(live_platform)
    created = client.post("/api/backtest/sweeps/", {
        "symbols": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross",
        "grid": {"fast": {"start": 2, "stop": 100, "step": 1}, "slow": {"start": 110, "stop": 600, "step": 10}},
    }, format="json").json()
    url = f"{live_platform.ws_url}{created['stream']}"

    def cancel():
        assert client.post(f"/api/backtest/sweeps/{created['id']}/cancel/").status_code == 202

    t0 = time.monotonic()
    messages = asyncio.run(_stream(url, client.token, on_first_result=cancel))
    assert messages[-1]["type"] == "end"
    sweep = Sweep.objects.get(pk=created["id"])
    assert sweep.status == "cancelled", live_platform.output()
    assert 0 < sweep.results.count() < sweep.total
    assert time.monotonic() - t0 < 30
    assert not _settled(live_platform, baseline), "no pool process outlives the cancelled job"
    assert os.path.isdir(f"/proc/{live_platform.processes[1].pid}")
