"""Every list page and list API issues as many queries for 200 rows as for 10.

Each row of the table names a list route, who opens it, and what one "row" of that list is. The test
makes 10 rows, counts the queries of one request, makes 190 more, and counts again: a list that
fetches something per row shows up as a difference. A list route added later belongs in the table.
"""

import itertools
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analyzer.models import AnalysisSession, Processing
from backtest.models import BacktestRun, BarImport, Instrument, Sweep
from etl.models import Branch, FetchedFile, FetchJob, FileSource
from scripts_runner.models import Script, ScriptRun
from trades.models import Export

SEQ = itertools.count()


def _source():
    return FileSource.objects.get_or_create(
        name="list host", defaults={"kind": FileSource.Kind.HTTP, "list_url_template": "http://127.0.0.1:9/{date}",
                                    "download_url_template": "http://127.0.0.1:9/{name}"})[0]


def _instrument():
    return Instrument.objects.get_or_create(symbol="LISTUSDT", defaults={
        "kind": "crypto", "exchange": "BINANCE", "exchange_symbol": "LISTUSDT"})[0]


def _script(owner):
    k = next(SEQ)
    return Script.objects.create(owner=owner, name=f"list{k}.py", file=f"x{k}.py", sha256="0" * 64, size=1)


def make_export(owner):
    k = next(SEQ)
    status = ("queued", "succeeded", "failed", "running")[k % 4]
    Export.objects.create(owner=owner, status=status, signature=f"sig{k}", params={"tickers": ["AAPL"]})


def make_script(owner):
    _script(owner)


def make_run(owner):
    ScriptRun.objects.create(owner=owner, status="succeeded", script=_script(owner))


def make_fetch(owner):
    k = next(SEQ)
    branch = Branch.objects.create(code=f"L{k}", name=f"List {k}", source=_source())
    FetchJob.objects.create(owner=owner, status="succeeded", branch=branch, pos=1, work_date=date(2025, 1, 1))


def make_fetched_file(owner):
    k = next(SEQ)
    branch = Branch.objects.create(code=f"F{k}", name=f"Files {k}", source=_source())
    job = FetchJob.objects.create(owner=owner, status="succeeded", branch=branch, pos=1, work_date=date(2025, 1, 1))
    FetchedFile.objects.create(job=job, branch=branch, filename=f"rd5000_{k}.csv", filetype="rd5000",
                               file=f"etl/raw/rd5000_{k}.csv", row_count=3, size=30, sha256="0" * 64)


def make_branch(owner):
    k = next(SEQ)
    Branch.objects.create(code=f"LB{k}", name=f"List branch {k}", source=_source())


def make_session(owner):
    k = next(SEQ)
    session = AnalysisSession.objects.create(owner=owner, title=f"file {k}", filename=f"f{k}.csv", file_format="csv",
                                             storage_dir=f"analyzer/{k}", data_name=f"analyzer/{k}/data.duckdb")
    Processing.objects.create(owner=owner, session=session, status="succeeded")


def make_backtest(owner):
    BacktestRun.objects.create(owner=owner, status="succeeded", instrument=_instrument(), strategy="sma_cross",
                               interval="1d", params={})


def make_sweep(owner):
    Sweep.objects.create(owner=owner, status="succeeded", strategy="sma_cross", grid={"fast": [5, 10]})


def make_import(owner):
    k = next(SEQ)
    BarImport.objects.create(owner=owner, status="succeeded", instrument=_instrument(), interval="1d",
                             filename=f"bars{k}.csv")


def make_user(owner):
    from accounts.models import User

    k = next(SEQ)
    User.objects.create_user(f"listed{k}", f"listed{k}@example.com", "correct-Horse-9")


def make_token(owner):
    from accounts.services import token_create

    token_create(user=owner, name=f"token {next(SEQ)}")


def make_instrument(owner):
    k = next(SEQ)
    Instrument.objects.create(symbol=f"L{k}USDT", kind="crypto", exchange="BINANCE", exchange_symbol=f"L{k}USDT")


# (route, who opens it, one row of the list)
LISTS = [
    ("/", "user", make_export),
    ("/", "user", make_import),
    ("/trades/exports/", "user", make_export),
    ("/api/trades/exports/", "user", make_export),
    ("/scripts/", "user", make_script),
    ("/scripts/runs/", "user", make_run),
    ("/api/scripts/", "user", make_script),
    ("/api/runs/", "user", make_run),
    ("/etl/jobs/", "user", make_fetch),
    ("/api/etl/jobs/", "user", make_fetch),
    ("/etl/files/", "user", make_fetched_file),
    ("/api/etl/files/", "user", make_fetched_file),
    ("/etl/branches/", "user", make_branch),
    ("/api/etl/branches/", "user", make_branch),
    ("/analyzer/", "user", make_session),
    ("/api/analyzer/sessions/", "user", make_session),
    ("/backtest/runs/", "user", make_backtest),
    ("/api/backtest/runs/", "user", make_backtest),
    ("/backtest/sweeps/", "user", make_sweep),
    ("/api/backtest/sweeps/", "user", make_sweep),
    ("/backtest/", "user", make_import),
    ("/api/market/instruments/", "user", make_instrument),
    ("/users/", "staff", make_user),
    ("/api/users/", "staff", make_user),
    ("/account/tokens/", "user", make_token),
    ("/api/auth/tokens/", "user", make_token),
]


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, HTTP_ACCEPT="text/html" if not url.startswith("/api/") else "application/json")
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("url,who,make", LISTS, ids=[f"{u} {m.__name__}" for u, _, m in LISTS])
def test_list_query_count_is_the_same_for_10_and_200_rows(client, django_user_model, url, who, make):
    owner = django_user_model.objects.create_user("lister", "lister@example.com", "correct-Horse-9")
    if who == "staff":
        owner.is_staff = True
        owner.save(update_fields=["is_staff"])
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    for _ in range(10):
        make(owner)
    few = queries_for(client, url)
    for _ in range(190):
        make(owner)
    many = queries_for(client, url)
    assert many == few, f"{url}: {few} queries with 10 rows, {many} with 200"
