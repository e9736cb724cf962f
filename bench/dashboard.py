"""Dashboard throughput on PostgreSQL: requests per second at 8 connections, one uvicorn worker, debug off.

Run from the project root: `.venv/bin/python bench/dashboard.py [--seconds=8] [--no-pool]`
Uses the dedicated database `bench_dashboard` on 127.0.0.1:5432 (created when missing).

- measured: `GET /` (the dashboard) as root with no jobs, and as a user with 200 jobs of five kinds;
- anchor: `GET /scripts/` (a plain list page) as the same user, on the same server, in the same run.
Prints requests per second, p50/p95 latency, errors, the ratio to the anchor and the load average, and the
CPU time one request costs the web server and PostgreSQL (read from /proc: on a shared machine the
throughput follows the load, the CPU per request does not).
Target: the dashboard serves at least 40 requests per second for both users.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
PG = "postgres://postgres@127.0.0.1:5432"
DB_NAME = "bench_dashboard"
SECONDS = float(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--seconds=")), 8))
CONNECTIONS = 8
JOBS = 200
SECRET_KEY = "bench-dashboard-" + "k" * 50


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_jobs(owner, n: int) -> None:
    """`n` finished jobs cycling through five kinds, the way a busy user's dashboard looks."""
    from backtest.models import BacktestRun, BarImport, Instrument
    from etl.models import Branch, FetchJob, FileSource
    from scripts_runner.models import Script, ScriptRun
    from trades.models import Export

    source = FileSource.objects.create(name="bench host", kind=FileSource.Kind.HTTP,
                                       list_url_template="http://127.0.0.1:9/{date}",
                                       download_url_template="http://127.0.0.1:9/{name}")
    instrument = Instrument.objects.create(symbol="BENCHUSDT", kind="crypto", exchange="BINANCE",
                                           exchange_symbol="BENCHUSDT")
    branches = [Branch.objects.create(code=f"B{i:02d}", name=f"Branch {i}", source=source) for i in range(20)]
    scripts = [Script.objects.create(owner=owner, name=f"s{i}.py", file="x.py", sha256="0" * 64, size=1)
               for i in range(20)]
    epoch = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k in range(n):
        kind, status = k % 5, ("succeeded", "failed", "cancelled")[k % 3]
        if kind == 0:
            job = Export.objects.create(owner=owner, status=status, params={"tickers": ["AAPL"] * 20})
        elif kind == 1:
            job = ScriptRun.objects.create(owner=owner, status=status, script=scripts[k % 20])
        elif kind == 2:
            job = FetchJob.objects.create(owner=owner, status=status, branch=branches[k % 20], pos=1 + k % 2,
                                          work_date=date(2025, 1, 1) + timedelta(days=k),
                                          file_list=[{"name": f"f{i}.csv", "size": 1000} for i in range(50)])
        elif kind == 3:
            job = BacktestRun.objects.create(owner=owner, status=status, instrument=instrument,
                                             strategy="sma_cross", interval="1d", params={"fast": 10})
        else:
            job = BarImport.objects.create(owner=owner, status=status, instrument=instrument, interval="1d",
                                           filename=f"bars{k}.csv")
        type(job).objects.filter(pk=job.pk).update(created_at=epoch + timedelta(minutes=k),
                                                   message=f"finished step {k}")


def setup() -> dict[str, str]:
    """Database, users and their session cookies."""
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SECRET_KEY"] = SECRET_KEY  # the server's: sessions are signed with it
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User

    call_command("migrate", verbosity=0)
    root = User.objects.create_superuser("bench-root", "root@example.com", "correct-Horse-9")
    busy = User.objects.create_user("bench-busy", "busy@example.com", "correct-Horse-9")
    make_jobs(busy, JOBS)
    cookies = {}
    for user in (root, busy):
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        cookies[user.username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


async def hammer(url: str, cookie: str, seconds: float) -> tuple[float, list[float], int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def one(client):
        nonlocal errors
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                response = await client.get(url)
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(cookies={"sessionid": cookie}, limits=limits, timeout=10) as client:
        warm = await client.get(url)
        if warm.status_code != 200:
            raise SystemExit(f"{url} answered {warm.status_code} {warm.headers.get('location', '')}")
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(CONNECTIONS)))
        took = time.perf_counter() - t0
    return len(latencies) / took, latencies, errors


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (from /proc), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def postgres_backends() -> list[int]:
    """The PostgreSQL server processes serving the bench database (the web server's connections)."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DB_NAME]).fetchall()
    return [pid for (pid,) in rows]


def measure(url: str, cookie: str, server_pid: int) -> dict:
    """Throughput at CONNECTIONS connections, and the CPU time one request costs the web server and
    PostgreSQL: on a shared machine req/s follows the load, CPU per request does not."""
    asyncio.run(hammer(url, cookie, 0.5))  # the server's database connection is open before it is looked up
    backends = postgres_backends()
    server0, pg0 = cpu_seconds([server_pid]), cpu_seconds(backends)
    rate, latencies, errors = asyncio.run(hammer(url, cookie, SECONDS))
    server_ms = (cpu_seconds([server_pid]) - server0) * 1000 / max(1, len(latencies))
    pg_ms = (cpu_seconds(backends) - pg0) * 1000 / max(1, len(latencies))
    return {"rate": rate, "latencies": latencies, "errors": errors, "server_ms": server_ms, "pg_ms": pg_ms}


def describe(result: dict) -> str:
    lat = sorted(result["latencies"])
    return (f"{result['rate']:.1f} req/s (p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.0f} ms, {result['errors']} errors; "
            f"CPU per request: server {result['server_ms']:.1f} ms + PostgreSQL {result['pg_ms']:.1f} ms)")


def main() -> None:
    ensure_database()
    cookies = setup()
    port = free_port()
    # The web server as deploy/platform-web.service runs it: a connection pool (`--no-pool`: a connection
    # opened per request, the default elsewhere).
    pool = "--no-pool" not in sys.argv
    env = dict(os.environ, DATABASE_POOL=str(pool).lower(), DJANGO_DEBUG="false", DJANGO_SECRET_KEY=SECRET_KEY,
               DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_COOKIES="false", DJANGO_HSTS_SECONDS="0")
    # Debug off serves hashed static names from the manifest, as production does: collect first.
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=BASE, env=env,
                   check=True)
    log = tempfile.NamedTemporaryFile(prefix="dashboard-bench-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
        cwd=BASE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import httpx

        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"dashboard: PostgreSQL ({'connection pool' if pool else 'a connection per request'}), "
              f"one uvicorn worker, debug off, {CONNECTIONS} connections, "
              f"{SECONDS:.0f} s per figure; load average {os.getloadavg()[0]:.2f}")
        for user, label in (("bench-root", "root, no jobs"), ("bench-busy", f"user with {JOBS} jobs")):
            anchor = measure(f"http://127.0.0.1:{port}/scripts/", cookies[user], server.pid)
            ours = measure(f"http://127.0.0.1:{port}/", cookies[user], server.pid)
            met = ours["rate"] >= 40 and not ours["errors"]
            print(f"  {label} (load average {os.getloadavg()[0]:.2f}):\n"
                  f"    anchor    /scripts/ {describe(anchor)}\n"
                  f"    dashboard /         {describe(ours)}\n"
                  f"    ratio {ours['rate'] / anchor['rate']:.2f} (CPU per request {anchor['server_ms'] / ours['server_ms']:.2f});"
                  f" one free core would serve {1000 / ours['server_ms']:.0f} req/s;"
                  f" target >= 40 req/s: {'met' if met else 'NOT met'}")
        print(f"  load average after: {os.getloadavg()[0]:.2f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
