"""The REST API: market data, strategies, runs, sweeps; validation and ownership."""

import pytest

from backtest import services
from backtest.models import BacktestRun, Sweep
from core.models import JobStatus


@pytest.mark.django_db
def test_market_endpoints(auth_client, user, btc, aapl, django_assert_max_num_queries):
    client = auth_client(user)
    with django_assert_max_num_queries(5):
        body = client.get("/api/market/instruments/").json()
    symbols = {i["symbol"]: i for i in body["results"]}
    assert symbols["BTCUSDT"]["data"][0] == {**symbols["BTCUSDT"]["data"][0], "interval": "1h", "bars": 2000}
    assert symbols["AAPL"]["fractional"] is False

    prices = client.get("/api/market/prices/", {"symbol": "btcusdt", "interval": "1h", "limit": 10}).json()
    assert prices["count"] == 10 and prices["truncated"] is True and len(prices["bars"][0]) == 6
    ranged = client.get("/api/market/prices/", {"symbol": "BTCUSDT", "start": "2024-01-02T00:00:00Z",
                                                 "end": "2024-01-02T05:00:00Z"}).json()
    assert ranged["count"] == 6 and ranged["bars"][0][0].startswith("2024-01-02T00:00")

    with django_assert_max_num_queries(3):
        latest = client.get("/api/market/latest/", {"interval": "1d"}).json()["results"]
    by = {r["symbol"]: r for r in latest}
    assert by["AAPL"]["close"] is not None and by["BTCUSDT"]["close"] is None  # no daily BTC bars

    stats = client.get("/api/market/stats/", {"symbol": "AAPL", "interval": "1d"}).json()["results"][0]
    assert stats["bars"] == 300 and stats["gaps"] == 0 and stats["volatility_ann_pct"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, params, field",
    [
        ("/api/market/prices/", {}, "symbol"),
        ("/api/market/prices/", {"symbol": "NOPE"}, "symbol"),
        ("/api/market/prices/", {"symbol": "BTCUSDT", "interval": "7m"}, "interval"),
        ("/api/market/prices/", {"symbol": "BTCUSDT", "start": "yesterday"}, "start"),
        ("/api/market/prices/", {"symbol": "BTCUSDT", "limit": "0"}, "limit"),
        ("/api/market/stats/", {"symbol": "NOPE"}, "symbol"),
        ("/api/market/latest/", {"kind": "bond"}, "kind"),
    ],
)
def test_market_input_errors_are_400_with_the_field(auth_client, user, btc, url, params, field):
    response = auth_client(user).get(url, params)
    assert response.status_code == 400 and field in response.json()


@pytest.mark.django_db
def test_api_requires_authentication(api_client):
    for url in ["/api/market/instruments/", "/api/backtest/strategies/", "/api/backtest/runs/", "/api/backtest/sweeps/"]:
        assert api_client.get(url).status_code in (401, 403)


@pytest.mark.django_db
def test_strategies_list_their_schemas(auth_client, user):
    body = auth_client(user).get("/api/backtest/strategies/").json()
    keys = [s["key"] for s in body["results"]]
    assert keys == ["buy_hold", "sma_cross", "ema_cross", "rsi_reversion", "bollinger", "macd", "donchian"]
    sma = body["results"][1]
    assert sma["params"][0] == {"name": "fast", "type": "int", "default": 10, "min": 2, "max": 500,
                                "description": "Fast SMA period (bars)."}
    assert any(m["key"] == "sharpe" for m in body["metrics"])


@pytest.mark.django_db
def test_run_create_dedupe_and_detail(sync_jobs, auth_client, user, btc):
    client = auth_client(user)
    payload = {"symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20},
               "commission_bps": 10}
    first = client.post("/api/backtest/runs/", payload, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["status"] == "queued"  # queued on commit, not before
    sync_jobs.commit()
    body = client.get(f"/api/backtest/runs/{first.json()['id']}/").json()
    assert body["status"] == "succeeded" and body["result"]["metrics"]["trades"] > 0
    assert body["result"]["bar_count"] == 2000 and body["result"]["semantics"]
    second = client.post("/api/backtest/runs/", payload, format="json")
    sync_jobs.commit()
    assert second.status_code == 200 and second.json()["id"] == body["id"] and second.json()["deduplicated"]
    detail = client.get(f"/api/backtest/runs/{body['id']}/", {"equity": "1"}).json()
    curve = detail["result"]["equity"]
    assert len(curve["equity"]) == len(curve["t"]) == len(curve["drawdown_pct"]) == 2000
    assert min(curve["drawdown_pct"]) == pytest.approx(detail["result"]["metrics"]["max_drawdown_pct"], abs=1e-4)
    assert "equity" not in client.get(f"/api/backtest/runs/{body['id']}/").json()["result"]
    listing = client.get("/api/backtest/runs/").json()
    assert listing["count"] == 1 and listing["results"][0]["metrics"]["trades"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload, field",
    [
        ({"symbol": "BTCUSDT"}, "strategy"),
        ({"symbol": "NOPE", "strategy": "sma_cross"}, "symbol"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"fast": 99, "slow": 10}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": "fast=3"}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "commission_bps": 9999}, "commission_bps"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "initial_cash": 0}, "initial_cash"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "start": "2024-02-01T00:00Z", "end": "2024-01-01T00:00Z"}, "end"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "start": "2030-01-01T00:00Z"}, "start"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "interval": "1d"}, "start"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "interval": "1m"}, "interval"),  # minutes: not offered
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"entry": 5}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"entry": {"a": 1}}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"stop_loss": "1e400"}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"stop_unit": ["pct"]}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"size": 2}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"sizing": "units", "size": -3}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"atr_period": 0, "stop_unit": "atr"}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "sma_cross", "params": {"finalize_trades": "perhaps"}}, "params"),
        ({"symbol": "BTCUSDT", "strategy": "buy_hold", "params": {"entry": "cross"}}, "params"),
    ],
)
def test_run_input_errors(auth_client, user, btc, payload, field):
    response = auth_client(user).post("/api/backtest/runs/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.django_db
def test_another_users_runs_and_sweeps_are_invisible(sync_jobs, auth_client, user, other_user, admin_user, btc):
    run, _ = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold")
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10]})
    bob = auth_client(other_user)
    assert bob.get(f"/api/backtest/runs/{run.pk}/").status_code == 404
    assert bob.get("/api/backtest/runs/").json()["count"] == 0
    assert bob.get(f"/api/backtest/sweeps/{sweep.pk}/").status_code == 404
    assert bob.get("/api/backtest/sweeps/").json()["count"] == 0
    assert bob.post(f"/api/backtest/sweeps/{sweep.pk}/cancel/").status_code == 404
    staff = auth_client(admin_user)
    assert staff.get(f"/api/backtest/runs/{run.pk}/").status_code == 200


@pytest.mark.django_db
def test_sweep_create_detail_sorted_and_cancel(auth_client, user, btc, aapl, sync_jobs):
    client = auth_client(user)
    response = client.post("/api/backtest/sweeps/", {
        "symbols": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross",
        "grid": {"fast": [5, 10, 20], "slow": {"start": 30, "stop": 90, "step": 30}},
    }, format="json")
    sync_jobs.commit()
    assert response.status_code == 201, response.json()
    sweep_id = response.json()["id"]
    detail = client.get(f"/api/backtest/sweeps/{sweep_id}/", {"sort": "max_drawdown_pct", "order": "desc"}).json()
    assert detail["status"] == "succeeded" and detail["total"] == 9 and len(detail["results"]) == 9
    dds = [r["metrics"]["max_drawdown_pct"] for r in detail["results"]]
    assert dds == sorted(dds, reverse=True)
    by_return = client.get(f"/api/backtest/sweeps/{sweep_id}/", {"sort": "return_pct", "order": "asc", "limit": 3}).json()
    returns = [r["metrics"]["return_pct"] for r in by_return["results"]]
    assert len(returns) == 3 and returns == sorted(returns)
    assert client.get(f"/api/backtest/sweeps/{sweep_id}/", {"sort": "bogus"}).status_code == 400
    # a finished sweep cannot be cancelled
    assert client.post(f"/api/backtest/sweeps/{sweep_id}/cancel/").status_code == 409
    sync_jobs.commit()


@pytest.mark.django_db
def test_cancel_a_queued_sweep(auth_client, user, btc):
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10]})
    response = auth_client(user).post(f"/api/backtest/sweeps/{sweep.pk}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert Sweep.objects.get(pk=sweep.pk).status == JobStatus.CANCELLED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload, field",
    [
        ({"symbols": [], "strategy": "sma_cross", "grid": {"fast": [5]}}, "symbols"),
        ({"symbols": ["NOPE"], "strategy": "sma_cross", "grid": {"fast": [5]}}, "symbols"),
        ({"symbols": ["BTCUSDT"], "strategy": "sma_cross", "grid": []}, "grid"),
        ({"symbols": ["BTCUSDT"], "strategy": "sma_cross", "grid": {"fast": "abc"}}, "grid"),
        ({"symbols": ["BTCUSDT"], "strategy": "sma_cross", "grid": {"fast": [5]}, "sample": 0}, "sample"),
        ({"symbols": ["BTCUSDT", "AAPL"], "strategy": "sma_cross", "grid": {"fast": [5]}}, "instruments"),
    ],
)
def test_sweep_input_errors(auth_client, user, btc, payload, field):
    from backtest import market_services

    market_services.instrument_create(symbol="AAPL", kind="stock", exchange="NASDAQ")  # no bars
    response = auth_client(user).post("/api/backtest/sweeps/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert BacktestRun.objects.count() == 0


@pytest.mark.django_db
def test_run_lists_do_not_grow_queries_with_runs(sync_jobs, auth_client, client, user, btc, django_assert_max_num_queries):
    for fast in (5, 6, 7, 8):
        services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="sma_cross", params={"fast": fast})
    api = auth_client(user)
    with django_assert_max_num_queries(6):
        assert api.get("/api/backtest/runs/").json()["count"] == 4
    client.force_login(user)
    with django_assert_max_num_queries(8):
        assert client.get("/backtest/runs/").status_code == 200
    for _ in range(2):
        services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross", grid={"fast": [5]})
    with django_assert_max_num_queries(6):
        assert api.get("/api/backtest/sweeps/").json()["count"] == 2
    with django_assert_max_num_queries(8):
        assert client.get("/backtest/sweeps/").status_code == 200
