"""Runs and sweeps through the services, with django-q2 running tasks inline."""

import functools

import pytest
from django.core.exceptions import ValidationError

from backtest import services, sweep_grid
from backtest.models import BacktestResult, BacktestRun, Sweep, SweepResult
from core.models import JobEvent, JobStatus


@pytest.mark.django_db
def test_run_is_computed_by_a_job_and_stores_its_provenance(sync_jobs, user, btc):
    run, created = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="sma_cross",
                                       params={"fast": 10, "slow": 40})
    sync_jobs.commit()
    run.refresh_from_db()
    assert created and run.status == JobStatus.SUCCEEDED, run.error
    result = run.result
    assert result.bar_count == 2000 and len(result.bars_hash) == 64 and result.engine_version
    assert result.params == {"fast": 10, "slow": 40, "allow_short": False}
    assert result.metrics["trades"] == len(result.trades) > 0
    assert len(result.equity["equity"]) == 2000
    assert run.reused is False


@pytest.mark.django_db
def test_identical_request_returns_the_stored_result(sync_jobs, user, other_user, btc):
    first, _ = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="ema_cross")
    sync_jobs.commit()
    again, created = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="ema_cross",
                                         params={"fast": 12})  # same as the defaults
    sync_jobs.commit()
    assert not created and again.pk == first.pk
    theirs, created = services.backtest_run_create(owner=other_user, instrument=btc, interval="1h", strategy="ema_cross")
    sync_jobs.commit()
    theirs.refresh_from_db()
    assert created and theirs.reused and theirs.status == JobStatus.SUCCEEDED
    assert theirs.result_id == BacktestRun.objects.get(pk=first.pk).result_id
    assert BacktestResult.objects.count() == 1


@pytest.mark.django_db
def test_changed_data_or_costs_give_a_new_result(sync_jobs, user, btc):
    services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold")
    sync_jobs.commit()
    _, created = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold", commission_bps=5)
    sync_jobs.commit()
    assert created
    from backtest.models import PriceBar
    bar = PriceBar.objects.filter(instrument=btc).order_by("-open_time").first()
    bar.close *= 1.01
    bar.save()
    _, created = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold")
    sync_jobs.commit()
    assert created
    assert BacktestResult.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"strategy": "nope"}, "strategy"),
        ({"strategy": "sma_cross", "params": {"fast": 50, "slow": 20}}, "params"),
        ({"strategy": "sma_cross", "params": {"fast": "x"}}, "params"),
        ({"strategy": "sma_cross", "params": {"bogus": 1}}, "params"),
        ({"strategy": "sma_cross", "params": [1, 2]}, "params"),
        ({"strategy": "sma_cross", "interval": "5m"}, "interval"),
        ({"strategy": "sma_cross", "interval": "1d"}, "start"),  # no daily bars
        ({"strategy": "sma_cross", "commission_bps": -1}, "commission_bps"),
    ],
)
def test_run_rejects_bad_input_with_a_field_message(user, btc, kwargs, field):
    args = {"owner": user, "instrument": btc, "interval": "1h", **kwargs}
    with pytest.raises(ValidationError) as exc:
        services.backtest_run_create(**args)
    assert field in exc.value.message_dict


@pytest.mark.django_db
def test_sweep_runs_every_combination_and_streams_results(sync_jobs, user, btc, aapl):
    sweep = services.sweep_create(
        owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
        grid={"fast": {"start": 5, "stop": 25, "step": 5}, "slow": [20, 50, 100]},
    )
    sync_jobs.commit()
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.SUCCEEDED, sweep.error
    # fast=20,25 with slow=20 break the fast < slow rule
    assert sweep.skipped == 2 and sweep.combos == 13 and sweep.done == 13
    assert SweepResult.objects.filter(sweep=sweep).count() == 13
    events = JobEvent.objects.filter(job_kind="backtest.sweep", job_id=sweep.pk, kind="result")
    assert sorted(e.data["seq"] for e in events) == list(range(1, 14))
    assert all("sharpe" in e.data["metrics"] for e in events)


@pytest.mark.django_db
def test_sweep_sample_and_cap(user, btc, settings, monkeypatch):
    from backtest import conf

    monkeypatch.setattr(conf, "SWEEP_MAX_COMBOS", 50)
    grid = {"fast": list(range(2, 30)), "slow": list(range(31, 60))}
    with pytest.raises(ValidationError) as exc:
        services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=grid)
    assert "limit is 50" in str(exc.value)
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=grid,
                                  sample=20, seed=3)
    again = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=grid,
                                  sample=20, seed=3)
    assert sweep.combos == 20 and sweep.param_sets == again.param_sets


@pytest.mark.django_db
@pytest.mark.parametrize(
    "grid, message",
    [
        ({}, "at least one parameter"),
        ({"fast": []}, "at least one value"),
        ({"fast": {"start": 1, "stop": 5}}, "start, stop and step"),
        ({"nope": [1]}, "Unknown parameter"),
        ({"fast": [1]}, "at least 2"),
        ({"fast": [40], "slow": [10]}, "No parameter set"),
    ],
)
def test_sweep_grid_errors(user, btc, grid, message):
    with pytest.raises(ValidationError) as exc:
        services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid=grid)
    assert message in str(exc.value)


@pytest.mark.django_db
def test_sweep_cancel_stops_it(user, btc, monkeypatch):
    """Cancel requested while running: the job stops at its next batch and keeps what it stored."""
    from backtest import tasks
    from core import services as core_services

    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": list(range(2, 22)), "slow": [30, 60]})
    original = core_services.job_progress
    calls = {"n": 0}

    def progress_then_cancel(*, job, fraction=None, message=None):
        original(job=job, fraction=fraction, message=message)
        calls["n"] += 1
        if calls["n"] == 2:  # after the first stored batch
            core_services.job_cancel(job=Sweep.objects.get(pk=job.pk), by=user)

    monkeypatch.setattr(services, "job_progress", progress_then_cancel)
    monkeypatch.setattr(services, "sweep_execute", functools.partial(services.sweep_execute, flush_rows=5, flush_seconds=3600))
    tasks.sweep_execute(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.CANCELLED
    assert sweep.results.count() == 5 and sweep.done == 5


@pytest.mark.django_db
def test_cancel_before_start(user, btc):
    from backtest import tasks
    from core.services import job_cancel

    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10]})
    job_cancel(job=sweep, by=user)
    tasks.sweep_execute(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.CANCELLED and sweep.results.count() == 0


@pytest.mark.django_db
def test_sweep_over_two_instruments_and_heatmap(sync_jobs, user, btc, client):
    from backtest import market_services, selectors

    eth = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=eth, interval="1h", bars=800, seed=9, start_price=2000)
    sweep = services.sweep_create(owner=user, instruments=[btc, eth], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10], "slow": [30, 60, 90]})
    sync_jobs.commit()
    sweep.refresh_from_db()
    assert sweep.total == 12 and sweep.results.count() == 12
    assert {r.instrument.symbol for r in sweep.results.all()} == {"BTCUSDT", "ETHUSDT"}
    all_cells = selectors.sweep_heatmap(sweep=sweep, x="fast", y="slow", metric="sharpe")
    eth_cells = selectors.sweep_heatmap(sweep=sweep, x="fast", y="slow", metric="sharpe", instrument_id=eth.pk)
    assert len(all_cells) == len(eth_cells) == 6
    eth_values = {r.metrics["sharpe"] for r in sweep.results.filter(instrument=eth)}
    assert {c["sharpe"] for c in eth_cells} == eth_values
    assert all(c["sharpe"] >= e["sharpe"] for c, e in zip(
        sorted(all_cells, key=lambda c: (c["fast"], c["slow"])), sorted(eth_cells, key=lambda c: (c["fast"], c["slow"]))))
    client.force_login(user)
    page = client.get(f"/backtest/sweeps/{sweep.pk}/heatmap/", {"x": "fast", "y": "slow", "metric": "sharpe",
                                                               "instrument": eth.pk})
    assert b'id="spec-heatmap"' in page.content
    assert b"Instrument" in client.get(f"/backtest/sweeps/{sweep.pk}/").content


def test_sampling_a_huge_grid_does_not_build_it():
    from backtest.strategies import STRATEGIES

    grid = {"fast": {"start": 2, "stop": 500, "step": 1}, "slow": {"start": 3, "stop": 1002, "step": 1},
            "allow_short": [True, False]}  # ~1 million points
    sets, dropped = sweep_grid.grid_expand(strategy=STRATEGIES["sma_cross"], grid=grid, sample=300, seed=1)
    assert len(sets) == 300 and all(p["fast"] < p["slow"] for p in sets)
    assert len({tuple(sorted(p.items())) for p in sets}) == 300
    again, _ = sweep_grid.grid_expand(strategy=STRATEGIES["sma_cross"], grid=grid, sample=300, seed=1)
    assert again == sets
    full, dropped = sweep_grid.grid_expand(strategy=STRATEGIES["sma_cross"], grid={"fast": [5, 10], "slow": [8, 20]},
                                              sample=None, seed=0)
    assert full == [{"fast": 5, "slow": 8, "allow_short": False}, {"fast": 5, "slow": 20, "allow_short": False},
                    {"fast": 10, "slow": 20, "allow_short": False}] and dropped == 1


@pytest.mark.django_db
@pytest.mark.parametrize("interval, periods", [("1w", 52), ("1M", 12)])
def test_weekly_and_monthly_runs_annualize_by_their_spacing(sync_jobs, user, interval, periods):
    import numpy as np

    from backtest import market_services, selectors
    from backtest.metrics import geometric_mean

    instrument = market_services.instrument_create(symbol="SPY", kind="stock", exchange="NYSE")
    report = market_services.bars_generate(instrument=instrument, interval=interval, bars=120, start="2010-01-01",
                                           seed=4)
    assert report["created"] == 120 and report["gap_count"] == 0
    run, _ = services.backtest_run_create(owner=user, instrument=instrument, interval=interval, strategy="buy_hold")
    sync_jobs.commit()
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    equity = np.asarray(run.result.equity["equity"])
    g = geometric_mean(equity[1:] / equity[:-1] - 1)  # one bar per period: bar-to-bar returns
    assert run.result.metrics["return_ann_pct"] == pytest.approx(((1 + g) ** periods - 1) * 100, rel=1e-9)
    assert run.result.metrics["exposure_pct"] > 95 and run.result.metrics["commissions"] > 0
    times = selectors.bars_load(instrument=instrument, interval=interval).time
    days = np.diff(times) / 86400
    assert set(days) == ({7.0} if interval == "1w" else {28.0, 29.0, 30.0, 31.0})  # calendar months, 2010-2019
    gaps = selectors.find_gaps(np.delete(times, [10, 11]), interval=interval, kind="stock")
    assert [g["missing"] for g in gaps] == [2]


@pytest.mark.django_db
def test_a_sweep_over_stop_distances_and_entry_modes(sync_jobs, user, btc):
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"stop_loss": [0, 0.5, 2], "entry": ["state", "cross"],
                                        "stop_unit": ["pct"]})
    sync_jobs.commit()
    sweep.refresh_from_db()
    assert sweep.status == JobStatus.SUCCEEDED, sweep.error
    rows = {(r.params["entry"], r.params["stop_loss"]): r.metrics for r in SweepResult.objects.filter(sweep=sweep)}
    assert len(rows) == 6
    # tighter stops close trades sooner: more trades than with no stop, and each row matches a single run
    assert rows[("state", 0.5)]["trades"] > rows[("state", 0)]["trades"]
    run, _ = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="sma_cross",
                                 params={"entry": "cross", "stop_loss": 2})
    sync_jobs.commit()
    run.refresh_from_db()
    assert run.result.metrics == rows[("cross", 2)]
