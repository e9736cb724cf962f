"""Portfolio runs through the service, the API, the pages and the admin: results, input errors, ownership."""

import json

import numpy as np
import pytest
from django.urls import reverse

from backtest import market_services, portfolio_services, tasks
from backtest.models import Portfolio
from core.models import JobStatus


@pytest.fixture
def eth(db):
    instrument = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=1500, start="2024-01-10", seed=5,
                                  start_price=2_000)
    return instrument


def _create(owner, instruments, **kwargs):
    return portfolio_services.portfolio_create(owner=owner, instruments=instruments, interval="1h", **kwargs)


@pytest.mark.django_db
def test_a_signals_portfolio_runs_as_a_job_and_stores_its_result(sync_jobs, user, btc, eth):
    portfolio = _create(user, [btc, eth], strategy="sma_cross", params={"fast": 10, "slow": 40},
                        weighting="inverse_vol", commission_bps=10)
    assert portfolio.status == JobStatus.QUEUED
    sync_jobs.commit()
    portfolio.refresh_from_db()
    assert portfolio.status == JobStatus.SUCCEEDED, portfolio.error
    # ETH starts 9 days after BTC: the union of both instruments' hours
    assert portfolio.bar_count == len(set(btc.bars.values_list("open_time", flat=True))
                                      | set(eth.bars.values_list("open_time", flat=True)))
    m = portfolio.metrics
    assert m["trades"] > 10 and m["trades"] == len(portfolio.trades)
    assert {t["symbol"] for t in portfolio.trades} == {"BTCUSDT", "ETHUSDT"}
    assert sum(c["pnl"] for c in portfolio.contributions) == pytest.approx(m["equity_final"] - 10_000, abs=1e-6)
    assert [c["symbol"] for c in portfolio.contributions] == ["BTCUSDT", "ETHUSDT"]
    weights = np.asarray(portfolio.allocation["weights"])
    total = weights.sum(axis=0) + np.asarray(portfolio.allocation["cash"])
    assert weights.shape[0] == 2 and np.allclose(total, 1.0, atol=1e-5)
    assert len(portfolio.equity["equity"]) == portfolio.bar_count
    assert portfolio.message.startswith("2 instruments")


@pytest.mark.django_db
def test_a_rebalanced_portfolio_charges_commission_on_every_order(sync_jobs, user, btc, eth):
    portfolio = _create(user, [btc, eth], mode="rebalance", rebalance="weekly", commission_bps=25)
    sync_jobs.commit()
    portfolio.refresh_from_db()
    assert portfolio.status == JobStatus.SUCCEEDED, portfolio.error
    assert portfolio.orders >= 2 * 10  # about 12 weeks, two instruments
    assert portfolio.metrics["commissions"] == pytest.approx(sum(c["commissions"] for c in portfolio.contributions))
    assert portfolio.metrics["commissions"] > 0 and portfolio.trades == [] and portfolio.metrics["trades"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs, field", [
    ({"strategy": "sma_cross", "single": True}, "instruments"),
    ({"strategy": ""}, "strategy"),
    ({"mode": "rebalance", "strategy": "sma_cross"}, "strategy"),
    ({"strategy": "sma_cross", "params": {"allow_short": True}}, "params"),
    ({"strategy": "sma_cross", "params": {"sizing": "units", "size": 2}}, "params"),
    ({"strategy": "sma_cross", "params": {"fast": 50, "slow": 10}}, "params"),
    ({"strategy": "sma_cross", "params": {"fast": "x" * 10_000}}, "params"),
    ({"strategy": "nope"}, "strategy"),
    ({"mode": "sideways", "strategy": "sma_cross"}, "mode"),
    ({"mode": "rebalance", "vol_window": 1}, "vol_window"),
    ({"mode": "rebalance", "interval": "1d"}, "instruments"),  # no daily bars
])
def test_service_refuses_requests_it_cannot_run_with_the_field(user, btc, eth, kwargs, field):
    from django.core.exceptions import ValidationError

    instruments = [btc] if kwargs.pop("single", False) else [btc, eth]
    kwargs.setdefault("interval", "1h")
    with pytest.raises(ValidationError) as caught:
        portfolio_services.portfolio_create(owner=user, instruments=instruments, **kwargs)
    assert field in caught.value.message_dict
    assert Portfolio.objects.count() == 0


@pytest.mark.django_db
def test_api_create_list_detail_and_cancel(sync_jobs, auth_client, user, btc, eth):
    client = auth_client(user)
    response = client.post("/api/backtest/portfolios/", {
        "symbols": ["BTCUSDT", "ETHUSDT"], "interval": "1h", "strategy": "ema_cross", "weighting": "equal",
    }, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["stream"] == f"/ws/backtest/portfolios/{created['id']}/"
    assert created["page"] == f"/backtest/portfolios/{created['id']}/"
    sync_jobs.commit()
    detail = client.get(created["url"]).json()
    assert detail["status"] == "succeeded" and detail["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert set(detail["metrics"]) >= {"sharpe", "return_pct", "max_drawdown_pct", "exposure_pct"}
    assert len(detail["contributions"]) == 2 and "equity" not in detail and detail["rules"]
    assert len(client.get(created["url"], {"equity": 1}).json()["equity"]["equity"]) == detail["bar_count"]
    listed = client.get("/api/backtest/portfolios/").json()
    assert listed["count"] == 1 and listed["results"][0]["metrics"] == detail["metrics"]
    assert "contributions" not in listed["results"][0]
    assert client.post(f"{created['url']}cancel/").status_code == 409  # already finished
    queued = client.post("/api/backtest/portfolios/", {"symbols": ["BTCUSDT", "ETHUSDT"], "mode": "rebalance"},
                         format="json").json()
    cancelled = client.post(f"{queued['url']}cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    sync_jobs.commit()  # the queued task finds it cancelled and does nothing
    assert Portfolio.objects.get(pk=queued["id"]).metrics == {}


@pytest.mark.django_db
@pytest.mark.parametrize("payload, field", [
    ({"symbols": ["BTCUSDT"], "strategy": "sma_cross"}, "symbols"),
    ({"symbols": ["BTCUSDT", "NOPE"], "strategy": "sma_cross"}, "symbols"),
    ({"symbols": "BTCUSDT,ETHUSDT", "strategy": "sma_cross"}, "symbols"),
    ({"symbols": ["BTCUSDT"] * 101, "strategy": "sma_cross"}, "symbols"),
    ({"symbols": ["BTCUSDT", "ETHUSDT"], "strategy": "sma_cross", "params": [1, 2]}, "params"),
    ({"symbols": ["BTCUSDT", "ETHUSDT"], "strategy": "sma_cross", "params": {"allow_short": True}}, "params"),
    ({"symbols": ["BTCUSDT", "ETHUSDT"], "mode": "rebalance", "rebalance": "daily"}, "rebalance"),
    ({"symbols": ["BTCUSDT", "ETHUSDT"], "mode": "rebalance", "initial_cash": -5}, "initial_cash"),
    ({"symbols": ["BTCUSDT", "ETHUSDT"], "mode": "rebalance", "vol_window": "many"}, "vol_window"),
])
def test_api_input_errors_are_400_with_the_field(auth_client, user, btc, eth, payload, field):
    response = auth_client(user).post("/api/backtest/portfolios/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Portfolio.objects.count() == 0


@pytest.mark.django_db
def test_another_users_portfolio_is_invisible_on_every_route(auth_client, client, user, other_user, admin_user,
                                                              btc, eth):
    portfolio = _create(user, [btc, eth], mode="rebalance")
    bob = auth_client(other_user)
    assert bob.get(f"/api/backtest/portfolios/{portfolio.pk}/").status_code == 404
    assert bob.get("/api/backtest/portfolios/").json()["count"] == 0
    assert bob.post(f"/api/backtest/portfolios/{portfolio.pk}/cancel/").status_code == 404
    client.force_login(other_user)
    assert client.get(reverse("backtest:portfolio_detail", args=[portfolio.pk])).status_code == 404
    assert client.post(reverse("backtest:portfolio_cancel", args=[portfolio.pk])).status_code == 404
    assert b"rebalance" not in client.get(reverse("backtest:portfolio_list")).content
    # the admin: not for users; staff may only look
    assert client.get(f"/admin/backtest/portfolio/{portfolio.pk}/change/").status_code == 302
    client.force_login(admin_user)
    assert client.get(f"/admin/backtest/portfolio/{portfolio.pk}/change/").status_code == 200
    assert client.post(f"/admin/backtest/portfolio/{portfolio.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Portfolio.objects.get(pk=portfolio.pk).status == JobStatus.QUEUED
    assert auth_client(admin_user).get(f"/api/backtest/portfolios/{portfolio.pk}/").status_code == 200


# --- pages -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_new_portfolio_form_explains_its_rules_and_shows_field_errors(client, user, btc, eth):
    client.force_login(user)
    page = client.get(reverse("backtest:portfolio_new")).content.decode()
    for text in ("union of their timestamps", "free cash", "Commission is charged on every order",
                 "Inverse volatility", 'data-testid="portfolio-rules"'):
        assert text in page, text
    bad = client.post(reverse("backtest:portfolio_new"), {
        "instruments": ["BTCUSDT"], "interval": "1h", "mode": "signals", "weighting": "equal", "vol_window": 30,
        "rebalance": "monthly", "strategy": "sma_cross", "params": "{}", "commission_bps": 10, "slippage_bps": 0,
        "initial_cash": 10000,
    })
    assert bad.status_code == 200 and b"Choose at least two instruments." in bad.content
    assert Portfolio.objects.count() == 0


@pytest.mark.django_db
def test_portfolio_page_polls_then_shows_metrics_contributions_and_the_allocation_chart(sync_jobs, client, user,
                                                                                         btc, eth):
    client.force_login(user)
    response = client.post(reverse("backtest:portfolio_new"), {
        "instruments": ["BTCUSDT", "ETHUSDT"], "interval": "1h", "mode": "rebalance", "weighting": "inverse_vol",
        "vol_window": 24, "rebalance": "weekly", "strategy": "sma_cross", "params": '{"fast": 10}',
        "commission_bps": 10, "slippage_bps": 0, "initial_cash": 10000,
    })
    portfolio = Portfolio.objects.get()
    assert response.status_code == 302 and response.url == reverse("backtest:portfolio_detail", args=[portfolio.pk])
    assert (portfolio.strategy, portfolio.params) == ("", {})  # the strategy fields do not apply to rebalancing
    fragment = client.get(response.url, HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in fragment.content and "HX-Refresh" not in fragment
    assert b'data-testid="portfolio-cancel"' in fragment.content
    tasks.portfolio_execute(portfolio.pk)
    assert client.get(response.url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    page = client.get(response.url).content.decode()
    for marker in ('id="spec-allocation"', 'id="spec-equity"', 'data-metric="sharpe"', 'data-contribution="ETHUSDT"',
                   "Commission is charged on every order"):
        assert marker in page, marker
    spec = json.loads(page.split('id="spec-allocation" type="application/json">')[1].split("</script>")[0])
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert {row["holding"] for row in spec["datasets"]["main"]} == {"Cash", "BTCUSDT", "ETHUSDT"}
    assert "href" not in json.dumps(spec) and "url" not in json.dumps(spec["datasets"])


@pytest.mark.django_db
def test_portfolio_list_does_not_grow_queries(client, user, btc, eth, django_assert_max_num_queries):
    for weighting in ("equal", "inverse_vol", "equal"):
        _create(user, [btc, eth], mode="rebalance", weighting=weighting)
    client.force_login(user)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("backtest:portfolio_list"))
    assert page.content.decode().count("BTCUSDT, ETHUSDT") == 3


@pytest.mark.django_db
def test_cancel_while_loading_bars_stops_the_run(monkeypatch, user, btc, eth):
    """The body checks for a stop between instruments: a cancel while the first one loads ends it cancelled."""
    from backtest import run_inputs
    from core.services import job_cancel

    portfolio = _create(user, [btc, eth], mode="rebalance")
    loaded = []
    real = run_inputs.bars_load_checked

    def load_then_cancel(**kwargs):
        loaded.append(kwargs["instrument"].symbol)
        job_cancel(job=Portfolio.objects.get(pk=portfolio.pk), by=user)
        return real(**kwargs)

    monkeypatch.setattr(portfolio_services, "bars_load_checked", load_then_cancel)
    tasks.portfolio_execute(portfolio.pk)
    portfolio.refresh_from_db()
    assert portfolio.status == JobStatus.CANCELLED and loaded == ["BTCUSDT"]
    assert portfolio.metrics == {} and portfolio.equity == {}
