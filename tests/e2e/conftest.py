"""Fixtures of the browser walks over every page: the platform as in production, and one of every object a page
shows (tests/e2e/pages.py lists the pages)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from conftest import BASE_DIR, _wait_http, database_url, free_port


@pytest.fixture(scope="session")
def production_platform(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn with DJANGO_DEBUG=false on the test database, after `collectstatic` into its own directory."""
    var_dir = tmp_path_factory.mktemp("prod-var")
    media = tmp_path_factory.mktemp("prod-media")
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(), "PLATFORM_VAR_DIR": str(var_dir), "PLATFORM_MEDIA_ROOT": str(media),
        "DJANGO_DEBUG": "false", "DJANGO_SECURE_SSL_REDIRECT": "false", "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "PLATFORM_TEST_HASHED_STATIC": "1",
        "Q_QUEUE_NAME": f"csp{os.getpid()}", "PYTHONUNBUFFERED": "1",
    })
    env.pop("PYTEST_VERSION", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=BASE_DIR, env=env,
                               capture_output=True, text=True, timeout=600)
    assert collected.returncode == 0, collected.stderr
    assert (var_dir / "staticfiles" / "vendor" / "vega-embed" / "vega-embed.min.js").exists()
    port = free_port()
    log = var_dir / "web.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--ws", "websockets", "--lifespan", "off", "--log-level", "warning"],
        cwd=BASE_DIR, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/accounts/login/", 60, [proc])
        yield {"url": url, "media": str(media), "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.fixture
def prod(production_platform, transactional_db, settings):
    settings.MEDIA_ROOT = production_platform["media"]
    return production_platform


@pytest.fixture
def etl_pos_host(tmp_path):
    from etl.demo_host import PosHostServer

    server = PosHostServer(tmp_path / "pos").start()
    server.root.mkdir(parents=True, exist_ok=True)
    yield server
    server.stop()


@pytest.fixture
def platform_data(prod, root_user, sync_jobs, etl_pos_host):
    """One of everything the pages show, made through the platform's services: an analyzer session with its
    auto-analysis charts, a backtest run, a sweep, a portfolio run and a bar import, a script and a run of it, a
    trade export, an ETL branch with a fetched day and a record export."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from analyzer.tests.conftest import create_session, run_pending_answers
    from backtest import market_services, portfolio_services, services as backtest_services
    from etl import services as etl_services
    from etl.demo_files import day_files, write_day
    from etl.models import Branch, FileSource
    from scripts_runner import services as scripts_services
    from trades.loading import trades_generate
    from trades.models import Exchange
    from trades.params import ExportParams
    from trades.services import export_request

    session = create_session(root_user, "trades.csv", "date,symbol,qty,price\n" + "".join(
        f"2024-0{1 + i % 3}-{1 + i % 28:02d},{['AAPL', 'MSFT', 'GOOG'][i % 3]},{i % 17},{100 + i % 50}\n"
        for i in range(300)), auto_analyze=True)
    run_pending_answers()
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE", name="Bitcoin")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=500, start="2024-01-01", seed=1,
                                  start_price=40_000)
    run, _ = backtest_services.backtest_run_create(owner=root_user, instrument=instrument, interval="1h", strategy="sma_cross",
                                          params={"fast": 5, "slow": 30})
    sweep = backtest_services.sweep_create(owner=root_user, instruments=[instrument], interval="1h",
                                           strategy="sma_cross", grid={"fast": [5, 10], "slow": [30, 60]})
    second = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE", name="Ether")
    market_services.bars_generate(instrument=second, interval="1h", bars=400, start="2024-01-03", seed=2,
                                  start_price=2_000)
    portfolio = portfolio_services.portfolio_create(owner=root_user, instruments=[instrument, second], interval="1h",
                                                    strategy="sma_cross", params={"fast": 5, "slow": 30})
    bar_import = market_services.bars_import_create(
        owner=root_user, instrument=instrument, interval="1d",
        upload=SimpleUploadedFile("bars.csv", b"time,open,high,low,close,volume\n"
                                              b"2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1.5,2.5,1,2,12\n"))
    script = scripts_services.script_create(owner=root_user, name="hello.py", code=b"print('hello')\n")
    script_run = scripts_services.script_run_create(script=script, user=root_user)

    trades_generate(tickers=4, days=3, rows=3000, seed=11)
    export = export_request(user=root_user, params=ExportParams(exchanges=(Exchange.objects.first().pk,))).export

    day = timezone.localdate() - timedelta(days=2)
    source = FileSource.objects.create(name="POS host", kind=FileSource.Kind.HTTP,
                                       list_url_template=etl_pos_host.list_template,
                                       download_url_template=etl_pos_host.download_template)
    branch = Branch.objects.create(code="E01", name="Branch E01", is_new_branch=False, source=source,
                                   opened_on=day - timedelta(days=5))
    write_day(etl_pos_host.root, branch="E01", pos=1, work_date=day,
              files=day_files(rng=random.Random(1), pos=1, work_date=day, lines=40, old=True,
                              truncated_chance=0, garbled_chance=0))
    fetch_job, _ = etl_services.fetch_job_request(user=root_user, branch=branch, pos=1, work_date=day)
    record_export = etl_services.record_export_create(user=root_user, filters={})
    fetched_file = fetch_job.files.order_by("filetype").first()
    assert fetched_file is not None, "the fetch of the ETL day kept no file"
    return {"session": session, "run": run, "sweep": sweep, "portfolio": portfolio, "script": script,
            "instrument": instrument,
            "bar_import": bar_import, "script_run": script_run, "export": export, "branch": branch,
            "fetch_job": fetch_job, "record_export": record_export, "fetched_file": fetched_file}
