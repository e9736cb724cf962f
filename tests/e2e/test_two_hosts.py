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


def _skip_reason() -> str | None:
    if not dj_settings.REDIS_URL or dj_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return "several hosts share PostgreSQL and Redis (the PostgreSQL + Redis pass runs this)"
    return namespaces_available()


@pytest.fixture(scope="module")
def _hosts(django_db_setup, django_db_blocker, tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from conftest import database_url

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
            "PLATFORM_MEDIA_ROOT": str(var_dir / "media"),
            "Q_CLUSTER_NAME": dj_settings.Q_CLUSTER["name"],
            "Q_QUEUE_NAME": QUEUE,
            "Q_WORKERS": "2",
            "WORKER_ID": f"host-{name}",
            "JOB_HEARTBEAT_STALE_SECONDS": "5",
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })
        host = Host(name=name, var_dir=var_dir, env=env, logdir=logdir)
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
        if message["type"] == "end" or until(received):
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
