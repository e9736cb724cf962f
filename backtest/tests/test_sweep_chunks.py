"""A sweep above BACKTEST_SWEEP_SPLIT_MIN_WORK is split into chunk tasks: the same results as the unsplit
sweep, one counter that finishes it, chunks that can run twice, and a cancel that stops every chunk."""

import pytest

from backtest import market_services, services, sweep_chunks
from backtest.models import Sweep, SweepResult
from core import services as core_services
from core.models import JobEvent, JobStatus

GRID = {"fast": {"start": 2, "stop": 30, "step": 2}, "slow": [40, 60, 90]}  # 45 sets


@pytest.fixture
def split(settings):
    """Split every sweep, into chunks of 5 parameter sets over the 2,000-bar fixtures."""
    settings.BACKTEST_SWEEP_SPLIT_MIN_WORK = 1
    settings.BACKTEST_SWEEP_TASK_WORK = 5 * 2000


@pytest.fixture
def eth(db):
    instrument = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=2000, start="2024-01-01", seed=4,
                                  start_price=2_000)
    return instrument


def _results(sweep) -> dict:
    return {(r.instrument_id, r.index): (r.params, r.metrics) for r in SweepResult.objects.filter(sweep=sweep)}


def _create(user, instruments):
    return services.sweep_create(owner=user, instruments=instruments, interval="1h", strategy="sma_cross", grid=GRID)


@pytest.mark.django_db
def test_split_sweep_equals_the_unsplit_one(sync_jobs, settings, user, btc, eth):
    whole = _create(user, [btc, eth])
    sync_jobs.commit()
    whole.refresh_from_db()
    assert whole.status == JobStatus.SUCCEEDED and "in chunk tasks" not in whole.message
    settings.BACKTEST_SWEEP_SPLIT_MIN_WORK = 1
    settings.BACKTEST_SWEEP_TASK_WORK = 5 * 2000
    sweep = _create(user, [btc, eth])
    plan = sweep_chunks.sweep_chunks_plan(sweep=sweep, bar_counts={btc.pk: 2000, eth.pk: 2000})
    assert len(plan) == 2 * 9  # 45 sets in chunks of 5, per instrument
    sync_jobs.commit()
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.SUCCEEDED, sweep.error
    assert sweep.done == sweep.total == 90 and "90 backtests done in chunk tasks; best Sharpe" in sweep.message
    assert sweep.worker_id == ""  # judged by the heartbeat its chunks beat, not by one worker instance
    assert _results(sweep) == _results(whole)
    assert sorted(SweepResult.objects.filter(sweep=sweep).values_list("seq", flat=True)) == list(range(1, 91))
    events = JobEvent.objects.filter(job_kind="backtest.sweep", job_id=sweep.pk, kind="result")
    assert sorted(e.data["seq"] for e in events) == list(range(1, 91))


def _running_split_sweep(user, btc):
    sweep = _create(user, [btc])
    sweep.refresh_from_db()
    assert core_services.job_start(job=sweep)
    return sweep


@pytest.mark.django_db
def test_a_chunk_run_twice_stores_nothing_twice(split, user, btc):
    sweep = _running_split_sweep(user, btc)
    plan = sweep_chunks.sweep_chunks_plan(sweep=sweep, bar_counts={btc.pk: 2000})
    (_, first, end), rest = plan[0], plan[1:]
    run = {"sweep_pk": sweep.pk, "instrument_pk": btc.pk, "first": first, "end": end, "flush_rows": 2}
    assert sweep_chunks.sweep_chunk_execute(**run) == 5
    assert sweep_chunks.sweep_chunk_execute(**run) == 0  # delivered again: nothing new
    # A chunk whose worker died after its first batch: only the missing rows are added.
    SweepResult.objects.filter(sweep=sweep, index__in=[first + 3, first + 4]).delete()
    Sweep.objects.filter(pk=sweep.pk).update(done=3)
    assert sweep_chunks.sweep_chunk_execute(**run) == 2
    sweep.refresh_from_db()
    assert sweep.done == 5 and SweepResult.objects.filter(sweep=sweep).count() == 5
    assert sweep.status == JobStatus.RUNNING
    for _, first, end in rest:
        sweep_chunks.sweep_chunk_execute(sweep_pk=sweep.pk, instrument_pk=btc.pk, first=first, end=end)
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.SUCCEEDED and sweep.done == 45
    assert sorted(SweepResult.objects.filter(sweep=sweep).values_list("index", flat=True)) == list(range(45))
    # and after the end, a late delivery changes nothing
    assert sweep_chunks.sweep_chunk_execute(sweep_pk=sweep.pk, instrument_pk=btc.pk, first=0, end=5) == 0


@pytest.mark.django_db
def test_cancel_stops_every_chunk(split, user, btc):
    sweep = _running_split_sweep(user, btc)
    plan = sweep_chunks.sweep_chunks_plan(sweep=sweep, bar_counts={btc.pk: 2000})
    _, first, end = plan[0]
    sweep_chunks.sweep_chunk_execute(sweep_pk=sweep.pk, instrument_pk=btc.pk, first=first, end=end)
    core_services.job_cancel(job=sweep, by=user)
    for _, first, end in plan[1:]:
        assert sweep_chunks.sweep_chunk_execute(sweep_pk=sweep.pk, instrument_pk=btc.pk, first=first, end=end) == 0
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.CANCELLED and sweep.done == 5
    assert SweepResult.objects.filter(sweep=sweep).count() == 5


@pytest.mark.django_db
def test_a_failed_sweep_stops_its_chunks(split, user, btc):
    sweep = _running_split_sweep(user, btc)
    core_services.job_fail(job=sweep, error="worker lost")
    assert sweep_chunks.sweep_chunk_execute(sweep_pk=sweep.pk, instrument_pk=btc.pk, first=0, end=5) == 0
    assert not SweepResult.objects.filter(sweep=sweep).exists()


@pytest.mark.django_db
def test_engine_callers_keep_the_in_process_sweep(split, user, btc):
    """`processes=` (the engine-level call) never splits: the sweep runs in this process."""
    sweep = _running_split_sweep(user, btc)
    services.sweep_execute(sweep, processes=1)
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.SUCCEEDED and sweep.done == 45 and "chunk" not in sweep.message
