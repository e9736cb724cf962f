"""The dashboard: the user's newest jobs of every kind, titled, with counts by status — in a number of
queries that does not grow with the number of jobs."""

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backtest.models import BacktestRun, BarImport, Instrument
from etl.models import Branch, FetchJob, FileSource
from scripts_runner.models import Script, ScriptRun
from trades.models import Export


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("dash", "dash@example.com", "correct-Horse-9")


SEQUENCE = itertools.count()
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_jobs(owner, n: int, *, status: str = "succeeded") -> None:
    """`n` jobs cycling through five kinds, each created one second after the one before."""
    source, _ = FileSource.objects.get_or_create(
        name="dash host", defaults={"kind": FileSource.Kind.HTTP, "list_url_template": "http://127.0.0.1:9/{date}",
                                    "download_url_template": "http://127.0.0.1:9/{name}"})
    instrument, _ = Instrument.objects.get_or_create(symbol="DASHUSDT", defaults={
        "kind": "crypto", "exchange": "BINANCE", "exchange_symbol": "DASHUSDT"})
    for _ in range(n):
        k = next(SEQUENCE)
        branch, _ = Branch.objects.get_or_create(code=f"D{k % 40:02d}", defaults={"name": "Dash", "source": source})
        script, _ = Script.objects.get_or_create(owner=owner, name=f"s{k % 40}.py",
                                                 defaults={"file": "x.py", "sha256": "0" * 64, "size": 1})
        kind = k % 5
        if kind == 0:
            job = Export.objects.create(owner=owner, status=status, params={})
        elif kind == 1:
            job = ScriptRun.objects.create(owner=owner, status=status, script=script)
        elif kind == 2:
            job = FetchJob.objects.create(owner=owner, status=status, branch=branch, pos=1 + k % 2,
                                          work_date=date(2025, 1, 1) + timedelta(days=k))
        elif kind == 3:
            job = BacktestRun.objects.create(owner=owner, status=status, instrument=instrument,
                                             strategy="sma_cross", interval="1d", params={})
        else:
            job = BarImport.objects.create(owner=owner, status=status, instrument=instrument, interval="1d",
                                           filename=f"bars{k}.csv")
        type(job).objects.filter(pk=job.pk).update(created_at=EPOCH + timedelta(seconds=k))


def dashboard_queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/")
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.mark.django_db
def test_dashboard_query_count_does_not_grow_with_jobs(client, owner):
    client.force_login(owner)
    make_jobs(owner, 10)
    few, page = dashboard_queries(client)
    assert page.count("<tr>") == 1 + 10  # header + every job
    make_jobs(owner, 190, status="failed")
    many, page = dashboard_queries(client)
    assert page.count("<tr>") == 1 + 25  # header + the newest 25
    assert many == few, f"{few} queries for 10 jobs, {many} for 200"


@pytest.mark.django_db
def test_dashboard_lists_the_newest_jobs_of_every_kind_with_titles_and_counts(client, owner, django_user_model):
    from core import selectors

    other = django_user_model.objects.create_user("other", "other@example.com", "correct-Horse-9")
    make_jobs(owner, 12)
    make_jobs(other, 5, status="failed")  # never counted or listed for `owner`
    make_jobs(owner, 3, status="running")
    jobs = selectors.recent_jobs(user=owner, limit=6)
    # owner's newest: the 3 running (kinds 2, 3, 4 of the cycle), then the last of the first 12 (kinds 1, 0, 4)
    assert [type(job).__name__ for job in jobs] == ["BarImport", "BacktestRun", "FetchJob", "ScriptRun", "Export",
                                                    "BarImport"]
    assert all(job.owner_id == owner.pk for job in jobs)
    created = [job.created_at for job in jobs]
    assert created == sorted(created, reverse=True)
    assert [job.status for job in jobs] == ["running"] * 3 + ["succeeded"] * 3
    assert jobs[0].job_title() == f"Import #{jobs[0].pk}: bars{jobs[0].filename[4:-4]}.csv → DASHUSDT 1d"
    assert jobs[1].job_title() == f"Backtest #{jobs[1].pk}: sma_cross on DASHUSDT 1d"
    assert selectors.job_counts(user=owner) == {"succeeded": 12, "running": 3}
    client.force_login(owner)
    _, page = dashboard_queries(client)
    assert "12 succeeded" in page and "3 running" in page


@pytest.mark.django_db
def test_dashboard_rows_of_every_kind_read_their_titles_without_more_queries(owner):
    """The rows load only the columns a row shows; whatever a title or link reads is among them."""
    from analyzer.models import AnalysisSession, Answer, Processing
    from backtest.models import Instrument, Portfolio, Sweep, WalkForward
    from core import selectors
    from core.models import WorkerCheck
    from core.recovery import job_models
    from etl.models import RecordExport

    make_jobs(owner, 5)
    session = AnalysisSession.objects.create(owner=owner, title="t", filename="sales.csv", file_format="csv",
                                             storage_dir="s", data_name="s/data.duckdb")
    Answer.objects.create(owner=owner, session=session, question="sum of qty by symbol")
    Answer.objects.create(owner=owner, session=session, mode=Answer.Mode.AUTO_ANALYZE)
    Processing.objects.create(owner=owner, session=session)
    Sweep.objects.create(owner=owner, strategy="sma_cross", total=12)
    Portfolio.objects.create(owner=owner, mode="rebalance", rebalance="monthly", weighting="inverse_vol")
    WalkForward.objects.create(owner=owner, strategy="ema_cross", interval="4h", in_sample_bars=500,
                               out_of_sample_bars=100, step_bars=100,
                               instrument=Instrument.objects.get(symbol="DASHUSDT"))
    RecordExport.objects.create(owner=owner, filters={"year": 2025})
    WorkerCheck.objects.create(owner=owner, message="checking")
    jobs = selectors.recent_jobs(user=owner, limit=25)
    assert {type(job) for job in jobs} == set(job_models())
    with CaptureQueriesContext(connection) as ctx:
        rows = [(job.job_title(), job.get_absolute_url(), job.get_status_display(), job.progress, job.message,
                 job.created_at, job.owner_id) for job in jobs]
    assert ctx.captured_queries == []
    titles = {title for title, *_ in rows}
    assert {"Answer: sum of qty by symbol", "Auto-analysis of sales.csv", "Processing sales.csv",
            "Records 2025 export"} <= titles
    assert any(title.endswith("monthly rebalance (inverse volatility weights)") for title in titles)
    assert any(title.startswith("Sweep #") and title.endswith("sma_cross (12 backtests)") for title in titles)
    assert any(title.startswith("Walk-forward #") and title.endswith("ema_cross on DASHUSDT 4h") for title in titles)
    assert ("checking", "/health/") in {(message, url) for _, url, _, _, message, _, _ in rows}
