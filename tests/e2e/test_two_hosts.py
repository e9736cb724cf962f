"""The platform run as two hosts: two ASGI servers and two workers, each host in its own mount
namespace with a local disk of its own (tests/e2e/hosts.py), sharing PostgreSQL and Redis.

Runs in the PostgreSQL + Redis pass (several hosts need a shared database and broker).
"""

import asyncio
import json
import os
import signal
import time

import httpx
import pytest
import websockets
from django.conf import settings as dj_settings

from backtest import market_services
from backtest.models import Sweep
from tests.e2e.hosts import Host, namespaces_available
from tests.support import api_token, token_header, wait_until

pytestmark = [pytest.mark.e2e]

QUEUE = f"twohosts{os.getpid()}"
STALE_SECONDS = 5
SWEEP_BARS = 30_000


def _skip_reason() -> str | None:
    if not dj_settings.REDIS_URL or dj_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return "several hosts share PostgreSQL and Redis (the PostgreSQL + Redis pass runs this)"
    return namespaces_available()


@pytest.fixture(scope="module")
def _hosts(django_db_setup, django_db_blocker, tmp_path_factory, s3_server):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    import uuid

    from conftest import S3_CREDENTIALS, S3Store, database_url

    # One S3-compatible store for both hosts (moto's server on 127.0.0.1).
    bucket = f"two-hosts-{uuid.uuid4().hex[:12]}"
    store = S3Store(endpoint=s3_server, bucket=bucket, prefix="media",
                    url=f"s3://{bucket}/media?endpoint_url={s3_server}&region=us-east-1&addressing_style=path")
    store.client().create_bucket(Bucket=bucket)

    logdir = tmp_path_factory.mktemp("two-hosts-logs")
    # The same path on both hosts, each a tmpfs of its own: "local disk" that the other host lacks.
    var_dir = tmp_path_factory.mktemp("two-hosts") / "var"
    with django_db_blocker.unblock():
        db_url = database_url()
    hosts = []
    for name in ("a", "b"):
        env = dict(os.environ)
        env.pop("PYTEST_VERSION", None)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        env.update({
            "DATABASE_URL": db_url,
            "PLATFORM_VAR_DIR": str(var_dir),
            "PLATFORM_STORAGE_URL": store.url,
            **S3_CREDENTIALS,
            "Q_CLUSTER_NAME": dj_settings.Q_CLUSTER["name"],
            "Q_QUEUE_NAME": QUEUE,
            "Q_WORKERS": "2",
            "WORKER_ID": f"host-{name}",
            # Short thresholds so the kill tests stay fast.
            "JOB_HEARTBEAT_STALE_SECONDS": "5",
            "WORKER_STALE_SECONDS": str(STALE_SECONDS),
            "RECOVERY_INTERVAL_SECONDS": "1",
            # Every sweep is split into chunk tasks of 20 parameter sets over SWEEP_BARS bars.
            "BACKTEST_SWEEP_SPLIT_MIN_WORK": "1",
            "BACKTEST_SWEEP_TASK_WORK": str(20 * SWEEP_BARS),
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })
        host = Host(name=name, var_dir=var_dir, env=env, logdir=logdir, store=store)
        host.boot()
        hosts.append(host)
    try:
        for host in hosts:
            host.start_web()
            host.start_worker()
        for host in hosts:
            _wait_http(host)
        yield hosts
    finally:
        for host in hosts:
            host.close()


def _wait_http(host: Host, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.web.poll() is not None:
            raise RuntimeError(f"web {host.name} exited:\n{host.output()}")
        try:
            httpx.get(f"{host.url}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"web {host.name} did not answer in {timeout}s:\n{host.output()}")


@pytest.fixture
def hosts(_hosts, transactional_db, monkeypatch):
    """Host A and host B, each with its web server and worker running (restarted when a test killed one)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "CLUSTER_NAME", QUEUE)
    for host in _hosts:
        if host.web is None or host.web.poll() is not None:
            host.start_web()
        if host.worker is None or host.worker.poll() is not None:
            host.start_worker()
    for host in _hosts:
        _wait_http(host)
    return _hosts


def test_the_hosts_do_not_share_a_local_disk(hosts):
    a, b = hosts
    marker = a.var_dir / "only-on-a"
    assert a.inside(["touch", str(marker)]).wait(timeout=10) == 0
    assert a.sees(marker)
    assert not b.sees(marker)
    assert not marker.exists()  # nor does the test's own machine


@pytest.fixture
def btc(transactional_db):
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=4000, start="2024-01-01", seed=3,
                                  start_price=40_000)
    return instrument


async def _read(ws, until, timeout: float) -> list[dict]:
    """Messages from an open socket until `until(messages)` holds, the socket ends or closes."""
    received = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
        except websockets.ConnectionClosed:
            break
        received.append(message)
        if message.get("type") == "end" or until(received):
            break
    return received


def test_a_client_whose_web_host_dies_mid_stream_resumes_on_the_other_without_a_gap(hosts, user, btc):
    a, b = hosts
    token = api_token(user)
    created = httpx.post(f"{a.url}/api/backtest/sweeps/", headers=token_header(token), json={
        "symbols": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross",
        "grid": {"fast": {"start": 2, "stop": 60, "step": 1}, "slow": {"start": 70, "stop": 400, "step": 10}},
    }, timeout=30)
    assert created.status_code == 201, created.text
    created = created.json()
    total = created["total"]
    assert total == 59 * 34  # both ends inclusive

    def results(messages):
        return [m for m in messages if m["type"] == "event" and m["kind"] == "result"]

    async def watch():
        async with websockets.connect(f"{a.ws_url}{created['stream']}", open_timeout=10,
                                      additional_headers=token_header(token)) as ws:
            first = await _read(ws, lambda got: len(results(got)) >= 20, timeout=120)
            # Host A's web server dies while the client is connected: the socket drops.
            await asyncio.to_thread(a.kill_web, signal.SIGKILL)
            first += await _read(ws, lambda got: False, timeout=10)
        seen = max(m["seq"] for m in first if m["type"] == "event")
        async with websockets.connect(f"{b.ws_url}{created['stream']}?after={seen}", open_timeout=10,
                                      additional_headers=token_header(token)) as ws:
            rest = await _read(ws, lambda got: False, timeout=240)
        return first, rest

    first, rest = asyncio.run(watch())
    assert first[-1]["type"] != "end", "the sweep ended before host A died: make it longer"
    assert rest and rest[-1]["type"] == "end", b.output()
    seqs = [m["seq"] for m in first + rest if m["type"] == "event"]
    # Every result once, in order, with no gap across the two hosts.
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(results(first + rest)) == total
    sweep = Sweep.objects.get(pk=created["id"])
    assert sweep.status == "succeeded", a.output() + b.output()
    assert sweep.results.count() == total


# --- helpers for the scenarios that place work on one host -----------------------------------------


def _worker_running(host: Host) -> bool:
    from core.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.filter(name=host.env["WORKER_ID"], state="running").exists()


def _only_worker(hosts, keep: Host) -> None:
    """Stop every other host's worker cleanly, so `keep`'s worker takes what comes next."""
    for host in hosts:
        if host is not keep:
            host.kill_worker(signal.SIGTERM)
    wait_until(lambda: _worker_running(keep), timeout=60, message=f"worker {keep.name} running\n{keep.output()}")


def _start_worker(host: Host) -> None:
    host.start_worker()
    wait_until(lambda: _worker_running(host), timeout=60, message=f"worker {host.name} running\n{host.output()}")


def _local_files(host: Host) -> list[str]:
    """The files on the host's own disk under its var folder (what another host cannot see)."""
    listing = host.inside(["find", str(host.var_dir), "-type", "f"], log=f"{host.name}-find.log")
    listing.wait(timeout=20)
    text = (host.logdir / f"{host.name}-find.log").read_text()
    (host.logdir / f"{host.name}-find.log").unlink()
    return [line for line in text.splitlines() if line.strip()]


async def _follow(url: str, token: str, *, timeout: float = 120, until=None) -> list[dict]:
    async with websockets.connect(url, open_timeout=10, max_size=None, additional_headers=token_header(token)) as ws:
        return await _read(ws, until or (lambda got: False), timeout=timeout)


# --- storage: one store, seen alike from every host ------------------------------------------------


def test_an_export_written_on_host_a_downloads_and_resumes_from_host_b(hosts, user):
    import hashlib

    from trades.loading import trades_generate

    a, b = hosts
    trades_generate(tickers=4, days=3, rows=40_000, seed=5)
    _only_worker(hosts, a)
    token = api_token(user)
    body = {"exchanges": [10, 12], "operations": [{"expression": "PRICE*SIZE"}], "sortby": "time_asc",
            "format": "csv"}
    started = httpx.post(f"{a.url}/api/trades/exports/", json=body, headers=token_header(token), timeout=30)
    assert started.status_code == 202, started.text
    pk = started.json()["id"]
    messages = asyncio.run(_follow(f"{a.ws_url}/ws/trades/exports/{pk}/", token))
    final = [m for m in messages if m["type"] == "status"][-1]["job"]
    assert final["status"] == "succeeded", a.output()
    detail = httpx.get(f"{b.url}/api/trades/exports/{pk}/", headers=token_header(token), timeout=30).json()
    url = f"{b.url}/api/trades/exports/{pk}/download/"
    full = httpx.get(url, headers=token_header(token), timeout=60)
    assert full.status_code == 200
    assert hashlib.sha256(full.content).hexdigest() == detail["sha256"]
    part = full.content[: len(full.content) // 3]
    rest = httpx.get(url, timeout=60, headers={**token_header(token), "Range": f"bytes={len(part)}-",
                                                "If-Range": f'"{detail["sha256"]}"'})
    assert rest.status_code == 206
    assert hashlib.sha256(part + rest.content).hexdigest() == detail["sha256"]
    # The file lives in the store, on neither host's disk; asking again on B reuses it, never expires it.
    from trades.models import Export

    assert Export.objects.get(pk=pk).file_name in a.store.keys()
    assert not [f for f in _local_files(b) if f.endswith(".csv")]
    again = httpx.post(f"{b.url}/api/trades/exports/", json=body, headers=token_header(token), timeout=30)
    assert again.status_code == 200 and again.json()["outcome"] == "existing" and again.json()["id"] == pk


SLOW_SCRIPT = (
    "import time\n"
    "for i in range(100000):\n"
    "    print(f'tick {i}', flush=True)\n"
    "    time.sleep(0.05)\n"
)


def test_a_script_uploaded_on_host_a_runs_there_and_is_watched_and_cancelled_from_host_b(hosts, user):
    from scripts_runner import services as script_services
    from scripts_runner.models import ScriptRun
    from scripts_runner.tests.conftest import require_sandbox

    require_sandbox()
    a, b = hosts
    script_services.script_access_set(user=user, run=True)
    _only_worker(hosts, a)
    token = api_token(user)
    script = httpx.post(f"{a.url}/api/scripts/", headers=token_header(token), timeout=30,
                        files={"file": ("ticks.py", SLOW_SCRIPT.encode(), "text/x-python")})
    assert script.status_code == 201, script.text
    run = httpx.post(f"{a.url}/api/scripts/{script.json()['id']}/runs/", json={}, headers=token_header(token),
                     timeout=30)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]

    def lines(messages):
        return [line for m in messages if m["type"] == "event" for line in m["data"].get("lines", ())]

    async def watch_and_cancel():
        async with websockets.connect(f"{b.ws_url}/ws/scripts/runs/{run_id}/", open_timeout=10, max_size=None,
                                      additional_headers=token_header(token)) as ws:
            seen = await _read(ws, lambda got: len(lines(got)) >= 10, timeout=90)
            asked = time.monotonic()
            response = await asyncio.to_thread(
                httpx.post, f"{b.url}/api/runs/{run_id}/cancel/", headers=token_header(token), timeout=30)
            assert response.status_code == 202, response.text
            seen += await _read(ws, lambda got: False, timeout=30)
            return seen, time.monotonic() - asked

    seen, took = asyncio.run(watch_and_cancel())
    assert lines(seen)[:10] == [f"tick {i}" for i in range(10)], a.output()
    assert seen[-1]["type"] == "end", a.output()
    finished = ScriptRun.objects.get(pk=run_id)
    assert finished.status == "cancelled", a.output()
    assert finished.worker_id == "host-a"
    assert took < 10


CSV = "symbol,price,size\n" + "".join(
    f"{sym},{100 + i % 17}.{i % 10},{1 + i % 5}\n" for i in range(600) for sym in ("AAPL", "MSFT", "GOOG"))


def test_a_file_processed_on_host_a_is_answered_about_on_host_b(hosts, user):
    a, b = hosts
    token = api_token(user)
    _only_worker(hosts, a)
    response = httpx.post(f"{a.url}/api/analyzer/upload/", headers=token_header(token), timeout=60,
                          files={"file": ("trades.csv", CSV.encode(), "text/csv")})
    assert response.status_code == 202, response.text
    body = response.json()
    processing = asyncio.run(_follow(f"{b.ws_url}{body['processing']['websocket']}", token))
    assert [m for m in processing if m["type"] == "status"][-1]["job"]["status"] == "succeeded", a.output()
    # Now only host B's worker is left: it answers from the stored DuckDB file it has never seen.
    _start_worker(b)
    a.kill_worker(signal.SIGTERM)
    assert not [f for f in _local_files(b) if f.endswith(".duckdb")]

    async def ask():
        url = f"{b.ws_url}/ws/analyzer/sessions/{body['session_id']}/"
        async with websockets.connect(url, open_timeout=10, max_size=None,
                                      additional_headers=token_header(token)) as ws:
            await _read(ws, lambda got: got[-1].get("event") == "done", timeout=120)
            await ws.send(json.dumps({"type": "message", "text": "average price by symbol"}))
            return await _read(ws, lambda got: got[-1].get("event") == "done", timeout=120)

    answer = asyncio.run(ask())
    result = next((m for m in answer if m.get("event") == "query_result"), None)
    assert result is not None, (answer, b.output())
    assert {r["symbol"] for r in result["data"]["result"]} == {"AAPL", "MSFT", "GOOG"}


# --- workers: a host that dies loses nothing -------------------------------------------------------


def test_a_worker_killed_mid_job_is_marked_in_time_and_queued_work_finishes_on_the_other_host(hosts, user, report):
    from core import services
    from core.models import JobStatus, WorkerCheck

    a, b = hosts
    _only_worker(hosts, a)
    # Both of A's workers busy, so the queued work below waits (prefetched on A's held list) and never
    # starts there: a job that started on A before the kill would be lost with it.
    long_job, other_long_job = (WorkerCheck.objects.create(owner=user, steps=100_000, interval_ms=100)
                                for _ in range(2))
    for job in (long_job, other_long_job):
        services.job_enqueue(job=job)
    wait_until(lambda: all(WorkerCheck.objects.get(pk=job.pk).status == JobStatus.RUNNING
                           for job in (long_job, other_long_job)), timeout=60, message="jobs running on A\n" + a.output())
    assert WorkerCheck.objects.get(pk=long_job.pk).worker_id == "host-a"
    queued = [WorkerCheck.objects.create(owner=user, steps=3, interval_ms=10) for _ in range(3)]
    for job in queued:
        services.job_enqueue(job=job)
    a.kill_worker(signal.SIGKILL)
    killed = time.monotonic()
    _start_worker(b)

    def marked():
        job = WorkerCheck.objects.get(pk=long_job.pk)
        return job.status != JobStatus.RUNNING or job.worker_id != "host-a"

    wait_until(marked, timeout=STALE_SECONDS + 15 + 30, message="dead host's job marked\n" + b.output())
    took = time.monotonic() - killed
    assert took <= STALE_SECONDS + 15, f"marked after {took:.1f} s"
    report(f"two hosts: a job of a worker killed with SIGKILL was marked {took:.1f} s later "
           f"(stale threshold {STALE_SECONDS} s; allowed {STALE_SECONDS + 15} s)")
    for job in queued:
        wait_until(lambda job=job: WorkerCheck.objects.get(pk=job.pk).is_finished, timeout=60,
                   message="queued work finished on B\n" + b.output())
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED and job.worker_id == "host-b"


# --- backtest: bars imported on one host, a sweep split over the workers of both ------------------


def _bars_csv(n: int, seed: int = 7) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    close = 2000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    start = 1_704_067_200  # 2024-01-01T00:00:00Z
    lines = ["time,open,high,low,close,volume"]
    for i, c in enumerate(close):
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3600 * i))
        lines.append(f"{t},{c:.4f},{c * 1.004:.4f},{c * 0.996:.4f},{c:.4f},{100 + i % 50}")
    return ("\n".join(lines) + "\n").encode()


def test_bars_imported_on_host_b_feed_a_split_sweep_that_survives_host_a_dying(hosts, admin_user, report):
    from backtest import market_services
    from backtest.models import PriceBar, Sweep, SweepResult

    a, b = hosts
    eth = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    token = api_token(admin_user)
    bars = SWEEP_BARS
    imported = httpx.post(f"{b.url}/api/market/import/", headers=token_header(token), timeout=60,
                          data={"symbol": "ETHUSDT", "interval": "1h"},
                          files={"file": ("eth.csv", _bars_csv(bars), "text/csv")})
    assert imported.status_code == 202, imported.text
    status_url = f"{b.url}{imported.json()['url']}"
    wait_until(lambda: httpx.get(status_url, headers=token_header(token), timeout=30).json()["status"]
               in ("succeeded", "failed"), timeout=120, message="bar import\n" + a.output() + b.output())
    assert httpx.get(status_url, headers=token_header(token), timeout=30).json()["status"] == "succeeded"
    assert PriceBar.objects.filter(instrument=eth, interval="1h").count() == bars

    # Host A's worker alone takes the sweep's chunks; it dies part-way, host B's worker finishes them.
    _only_worker(hosts, a)
    created = httpx.post(f"{a.url}/api/backtest/sweeps/", headers=token_header(token), timeout=30, json={
        "symbols": ["ETHUSDT"], "interval": "1h", "strategy": "sma_cross",
        "grid": {"fast": {"start": 2, "stop": 101, "step": 1}, "slow": {"start": 110, "stop": 300, "step": 10}},
    })
    assert created.status_code == 201, created.text
    sweep_id, total = created.json()["id"], created.json()["total"]
    assert total == 100 * 20
    wait_until(lambda: Sweep.objects.get(pk=sweep_id).done > 0 or Sweep.objects.get(pk=sweep_id).is_finished,
               timeout=120, message="first chunk done on A\n" + a.output())
    sweep = Sweep.objects.get(pk=sweep_id)
    # Split: only `sweep_chunks_enqueue` unties a running sweep from its worker instance (its chunks beat
    # its heartbeat from any host).
    assert not sweep.is_finished and sweep.worker_id == "", (sweep.status, sweep.message, sweep.worker_id)
    a.kill_worker(signal.SIGKILL)
    killed = time.monotonic()
    done_at_kill = Sweep.objects.get(pk=sweep_id).done
    _start_worker(b)
    b_up = time.monotonic() - killed
    wait_until(lambda: Sweep.objects.get(pk=sweep_id).done > done_at_kill, timeout=240,
               message="B takes over\n" + b.output())
    b_first = time.monotonic() - killed
    wait_until(lambda: Sweep.objects.get(pk=sweep_id).is_finished, timeout=240,
               message="sweep finished on B\n" + b.output())
    sweep = Sweep.objects.get(pk=sweep_id)
    assert sweep.status == "succeeded", (sweep.error, b.output())
    assert sweep.done == total
    indexes = list(SweepResult.objects.filter(sweep=sweep).values_list("index", flat=True))
    assert sorted(indexes) == list(range(total))  # every combination once, none twice
    report(f"two hosts: a split sweep of {total} combinations over {bars} bars lost its first worker host "
           f"after {done_at_kill} results; the other host's worker was up {b_up:.1f} s after the kill, added its "
           f"first result at {b_first:.1f} s and finished the sweep at {time.monotonic() - killed:.1f} s")
