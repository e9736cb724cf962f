"""Walk-forwards as jobs: the service, live windows, progress and cancel, the API, the pages, who sees them."""

import functools

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from backtest import walkforward_services
from backtest.engine import Costs
from backtest.models import WalkForward
from backtest.selectors import bars_load
from backtest.strategies import strategy_get
from backtest.walkforward import walkforward_compute, windows_plan
from core.models import JobEvent, JobStatus

GRID = {"fast": [5, 10, 20], "slow": [40, 80]}


def create(owner, instrument, **kwargs):
    args = dict(owner=owner, instrument=instrument, interval="1h", strategy="sma_cross", grid=GRID,
                in_sample_bars=600, out_of_sample_bars=300, commission_bps=10)
    return walkforward_services.walkforward_create(**{**args, **kwargs})


@pytest.mark.django_db
def test_walkforward_job_stores_windows_curve_and_streams_each_window(sync_jobs, user, btc):
    wf = create(user, btc)
    assert (wf.window_count, wf.combos, wf.step_bars, wf.status) == (5, 6, 300, JobStatus.QUEUED)
    sync_jobs.commit()
    wf.refresh_from_db()
    assert wf.status == JobStatus.SUCCEEDED, wf.error
    assert wf.windows_done == 5 and wf.bar_count == 2000 and wf.progress == 1.0
    # The same computation outside the job gives the same stored result.
    bars = bars_load(instrument=btc, interval="1h")
    expected = walkforward_compute(
        bars=bars, windows=windows_plan(bars=2000, mode="rolling", in_sample=600, out_of_sample=300),
        strategy=strategy_get("sma_cross"), param_sets=wf.param_sets, metric="sharpe",
        costs=Costs(initial_cash=10_000, commission_bps=10, fractional=True), annual_days=365)
    assert [w["params"] for w in wf.windows] == [w.params for w in expected.windows]
    np.testing.assert_allclose(wf.equity["equity"], np.round(expected.equity, 6))
    assert wf.equity["t"] == expected.time.tolist() and len(wf.equity["close"]) == len(wf.equity["t"])
    assert wf.metrics["equity_final"] == pytest.approx(expected.metrics["equity_final"])
    assert wf.windows[-1]["partial"] is True and wf.windows[-1]["oos_end"] == 2000
    events = list(JobEvent.objects.filter(job_kind="backtest.walkforward", job_id=wf.pk, kind="window"))
    assert [e.data["index"] for e in events] == [0, 1, 2, 3, 4]
    assert events[0].data["params"] == wf.windows[0]["params"] and "sharpe" in events[0].data["in_sample"]


@pytest.mark.django_db
def test_progress_is_reported_per_in_sample_backtest(user, btc, monkeypatch):
    from backtest import tasks
    from core import jobkit

    wf = create(user, btc)
    seen = []
    original = jobkit.services.job_progress

    def record(*, job, fraction=None, message=None, **fields):
        seen.append((fraction, message))
        original(job=job, fraction=fraction, message=message, **fields)

    monkeypatch.setattr(jobkit.services, "job_progress", record)
    monkeypatch.setattr(jobkit.JobReporter, "__init__", functools.partialmethod(
        jobkit.JobReporter.__init__, progress_seconds=0))
    tasks.walkforward_execute(wf.pk)
    fractions = [f for f, _ in seen if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(fractions) >= 5 * 6  # one per in-sample backtest at least
    assert any(m and m.startswith("Window 3 of 5: in-sample backtest 4 of 6") for _, m in seen)


@pytest.mark.django_db
def test_cancel_stops_it_after_the_current_window(user, btc, monkeypatch):
    from backtest import tasks
    from core import services as core_services

    wf = create(user, btc)
    original = walkforward_services.job_events_add

    def add_then_cancel(*, job, events):
        original(job=job, events=events)
        if events[0][1]["index"] == 1:
            core_services.job_cancel(job=WalkForward.objects.get(pk=job.pk), by=user)

    monkeypatch.setattr(walkforward_services, "job_events_add", add_then_cancel)
    tasks.walkforward_execute(wf.pk)
    wf.refresh_from_db()
    assert wf.status == JobStatus.CANCELLED and wf.windows_done == 2 and wf.windows == []
    assert JobEvent.objects.filter(job_kind="backtest.walkforward", job_id=wf.pk, kind="window").count() == 2


@pytest.mark.django_db
def test_cancel_before_start(user, btc):
    from backtest import tasks
    from core.services import job_cancel

    wf = create(user, btc)
    job_cancel(job=wf, by=user)
    tasks.walkforward_execute(wf.pk)
    wf.refresh_from_db()
    assert wf.status == JobStatus.CANCELLED and wf.windows_done == 0


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs, field, message", [
    ({"in_sample_bars": 1999}, "in_sample_bars", "too few for one window"),
    ({"step_bars": 100}, "step_bars", "at least the out-of-sample length"),
    ({"metric": "beta"}, "metric", "Choose one of"),
    ({"mode": "expanding"}, "mode", "Choose one of"),
    ({"grid": {"fast": [50], "slow": [40]}}, "grid", "No parameter set"),
    ({"out_of_sample_bars": 2, "in_sample_bars": 2}, "step_bars", "limit is"),
])
def test_requests_are_refused_with_what_to_fix(user, btc, settings, kwargs, field, message):
    settings.BACKTEST_WALKFORWARD_MAX_WINDOWS = 500
    with pytest.raises(ValidationError) as exc:
        create(user, btc, **kwargs)
    assert field in exc.value.message_dict and message in " ".join(exc.value.message_dict[field])
    assert not WalkForward.objects.exists()


@pytest.mark.django_db
def test_work_limit(user, btc, settings):
    settings.BACKTEST_WALKFORWARD_MAX_WORK = 10_000
    with pytest.raises(ValidationError, match="bar-steps"):
        create(user, btc)


# --- the API ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_creates_lists_shows_and_refuses_a_finished_cancel(sync_jobs, user, btc, auth_client):
    client = auth_client(user)
    response = client.post("/api/backtest/walkforwards/", {
        "symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "grid": GRID, "mode": "anchored",
        "in_sample_bars": 600, "out_of_sample_bars": 300, "step_bars": 400, "metric": "return_pct",
    }, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["stream"] == f"/ws/backtest/walkforwards/{created['id']}/" and created["window_count"] == 4
    sync_jobs.commit()
    detail = client.get(created["url"]).json()
    assert detail["status"] == "succeeded" and len(detail["windows"]) == 4 and detail["rules"]
    assert [w["is_start"] for w in detail["windows"]] == [0, 0, 0, 0]
    assert [w["oos_start"] for w in detail["windows"]] == [600, 1000, 1400, 1800]
    assert detail["metrics"]["trades"] == sum(len(w["trades"]) for w in detail["windows"])
    assert "equity" not in detail
    curve = client.get(created["url"], {"equity": "1"}).json()["equity"]
    # the step (400) is longer than the out-of-sample part (300): each part comes with its own anchor bar
    expected = sum(w["oos_end"] - w["oos_start"] + 1 for w in detail["windows"])
    assert len(curve["t"]) == len(curve["equity"]) == len(curve["close"]) == expected == 3 * 301 + 201
    assert curve["equity"][0] == 10_000 and curve["equity"][-1] == pytest.approx(detail["metrics"]["equity_final"])
    listing = client.get("/api/backtest/walkforwards/").json()
    assert [w["id"] for w in listing["results"]] == [created["id"]]
    assert client.post(f"/api/backtest/walkforwards/{created['id']}/cancel/").status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"in_sample_bars": "many"}, "in_sample_bars"),
    ({"in_sample_bars": 1}, "in_sample_bars"),
    ({"out_of_sample_bars": 10**12}, "out_of_sample_bars"),
    ({"grid": "fast"}, "grid"),
    ({"grid": {"fast": {"start": 1, "stop": 1e308, "step": 1e-308}}}, "grid"),
    ({"symbol": "NOPE"}, "symbol"),
    ({"metric": "equity_peak"}, "metric"),
    ({"mode": ["rolling"]}, "mode"),
])
def test_api_answers_bad_bodies_with_400(user, btc, auth_client, body, field):
    client = auth_client(user)
    base = {"symbol": "BTCUSDT", "strategy": "sma_cross", "grid": GRID, "in_sample_bars": 600,
            "out_of_sample_bars": 300}
    response = client.post("/api/backtest/walkforwards/", {**base, **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


@pytest.mark.django_db
def test_another_user_and_staff_get_404_everywhere_and_cannot_cancel(user, other_user, admin_user, btc,
                                                                     auth_client, client):
    wf = create(user, btc)
    for viewer in (other_user, admin_user):
        api = auth_client(viewer)
        assert api.get(f"/api/backtest/walkforwards/{wf.pk}/").status_code == 404
        assert api.post(f"/api/backtest/walkforwards/{wf.pk}/cancel/").status_code == 404
        assert api.get("/api/backtest/walkforwards/").json()["results"] == []
        client.force_login(viewer)
        assert client.get(f"/backtest/walkforwards/{wf.pk}/").status_code == 404
        assert client.post(f"/backtest/walkforwards/{wf.pk}/cancel/").status_code == 404
        assert f"/backtest/walkforwards/{wf.pk}/" not in client.get("/backtest/walkforwards/").content.decode()
    wf.refresh_from_db()
    assert wf.cancel_requested is False and wf.status == JobStatus.QUEUED
    # The admin site: an admin (not root) may not even list them.
    client.force_login(admin_user)
    assert client.get("/admin/backtest/walkforward/").status_code == 403
    assert client.get(f"/admin/backtest/walkforward/{wf.pk}/change/").status_code == 403


@pytest.mark.django_db
def test_root_sees_them_read_only_in_the_admin(user, root_user, btc, client):
    wf = create(user, btc)
    client.force_login(root_user)
    assert client.get("/admin/backtest/walkforward/").status_code == 200
    assert client.get(f"/admin/backtest/walkforward/{wf.pk}/change/").status_code == 200
    assert client.post(f"/admin/backtest/walkforward/{wf.pk}/delete/", {"post": "yes"}).status_code == 403
    assert WalkForward.objects.filter(pk=wf.pk).exists()


@pytest.mark.django_db
def test_anonymous_is_refused(btc, client, api_client):
    assert client.get("/backtest/walkforwards/new/").status_code == 302
    assert api_client.get("/api/backtest/walkforwards/").status_code in (401, 403)
    assert api_client.post("/api/backtest/walkforwards/", {}, format="json").status_code in (401, 403)


# --- the pages ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_form_shows_its_rules_and_starts_a_walkforward(sync_jobs, user, btc, client):
    client.force_login(user)
    page = client.get("/backtest/walkforwards/new/").content.decode()
    assert "Windows are counted in bars" in page and 'name="in_sample_bars"' in page
    assert 'data-testid="strategy-link"' in page
    response = client.post("/backtest/walkforwards/new/", {
        "instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "grid": '{"fast": [5, 10], "slow": [40]}',
        "mode": "rolling", "in_sample_bars": 600, "out_of_sample_bars": 300, "metric": "sharpe",
        "commission_bps": 10, "slippage_bps": 0, "initial_cash": 10000,
    })
    assert response.status_code == 302
    wf = WalkForward.objects.get()
    assert response["Location"] == f"/backtest/walkforwards/{wf.pk}/"
    sync_jobs.commit()
    page = client.get(response["Location"]).content.decode()
    assert page.count('data-testid="window-row"') == 5
    assert 'data-testid="walkforward-equity-chart"' in page and 'id="spec-equity"' in page
    assert 'data-testid="walkforward-degradation"' in page
    assert "/backtest/walkforwards/" in client.get("/backtest/walkforwards/").content.decode()


@pytest.mark.django_db
def test_form_errors_are_shown_beside_the_fields(user, btc, client):
    client.force_login(user)
    response = client.post("/backtest/walkforwards/new/", {
        "instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "grid": "{not json",
        "mode": "rolling", "in_sample_bars": 600, "out_of_sample_bars": 300, "step_bars": 100, "metric": "sharpe",
        "commission_bps": 10, "slippage_bps": 0, "initial_cash": 10000,
    })
    assert response.status_code == 200 and "must be valid JSON" in response.content.decode()
    response = client.post("/backtest/walkforwards/new/", {
        "instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "grid": '{"fast": [5]}',
        "mode": "rolling", "in_sample_bars": 600, "out_of_sample_bars": 300, "step_bars": 100, "metric": "sharpe",
        "commission_bps": 10, "slippage_bps": 0, "initial_cash": 10000,
    })
    assert response.status_code == 200
    assert 'data-testid="error-step_bars"' in response.content.decode() and not WalkForward.objects.exists()
