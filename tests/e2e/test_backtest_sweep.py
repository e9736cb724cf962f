"""Sweeps end to end: a real ASGI server and a real worker; API + websocket clients and a browser."""

import asyncio
import json
import time

import pytest
import websockets

from backtest import market_services
from backtest.models import BacktestRun, Sweep
from tests.support import token_header

pytestmark = pytest.mark.e2e


@pytest.fixture
def btc(transactional_db):
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=4000, start="2024-01-01", seed=3,
                                  start_price=40_000)
    return instrument


async def _stream(url: str, token: str, *, on_first_result=None, first_kind: str = "result",
                  timeout: float = 90.0) -> list[dict]:
    """A job stream's messages up to its end; `on_first_result` runs once, at the first `first_kind` event."""
    received = []
    async with websockets.connect(url, open_timeout=10, additional_headers=token_header(token)) as ws:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            received.append(message)
            if on_first_result and message["type"] == "event" and message["kind"] == first_kind:
                await asyncio.to_thread(on_first_result)
                on_first_result = None
            if message["type"] == "end":
                break
    return received


def test_api_client_streams_sweep_results_over_the_websocket(live_platform, user, btc, auth_client):
    client = auth_client(user)
    created = client.post("/api/backtest/sweeps/", {
        "symbols": ["BTCUSDT"], "interval": "1h", "strategy": "ema_cross",
        "grid": {"fast": {"start": 3, "stop": 30, "step": 3}, "slow": [40, 60, 90]},
    }, format="json").json()
    url = f"{live_platform.ws_url}{created['stream']}"
    messages = asyncio.run(_stream(url, client.token))
    results = [m for m in messages if m["type"] == "event" and m["kind"] == "result"]
    assert len(results) == created["total"] == 30, live_platform.output()
    assert sorted(m["data"]["seq"] for m in results) == list(range(1, 31))
    assert messages[-1]["type"] == "end"
    assert [m for m in messages if m["type"] == "status"][-1]["job"]["status"] == "succeeded"
    # resume after the 20th event: only the rest is replayed
    rest = asyncio.run(_stream(url + "?after=20", client.token))
    assert [m["seq"] for m in rest if m["type"] == "event"] == list(range(21, 31))
    detail = client.get(f"/api/backtest/sweeps/{created['id']}/", {"sort": "sharpe"}).json()
    sharpes = [r["metrics"]["sharpe"] for r in detail["results"]]
    assert sharpes == sorted(sharpes, reverse=True)


def test_cancel_stops_a_running_sweep(live_platform, user, btc, auth_client):
    client = auth_client(user)
    created = client.post("/api/backtest/sweeps/", {
        "symbols": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross",
        "grid": {"fast": {"start": 2, "stop": 100, "step": 1}, "slow": {"start": 110, "stop": 400, "step": 10}},
    }, format="json").json()
    assert created["total"] == 99 * 30
    url = f"{live_platform.ws_url}{created['stream']}"

    def cancel():
        assert client.post(f"/api/backtest/sweeps/{created['id']}/cancel/").status_code == 202

    messages = asyncio.run(_stream(url, client.token, on_first_result=cancel))
    assert messages[-1]["type"] == "end"
    sweep = Sweep.objects.get(pk=created["id"])
    assert sweep.status == "cancelled", live_platform.output()
    assert 0 < sweep.results.count() < sweep.total


def test_browser_runs_a_sweep_watches_results_and_opens_the_best(live_platform, user, btc, browser_page, login_page):
    page = login_page(browser_page, live_platform, user)
    page.goto(live_platform.url + "/backtest/sweeps/new/")
    page.check("input[name=instruments][value=BTCUSDT]")
    page.select_option("select[name=strategy]", "sma_cross")
    page.fill("textarea[name=grid]", '{"fast": {"start": 2, "stop": 60, "step": 2}, "slow": [70, 100, 140, 200]}')
    page.click("[data-testid=sweep-submit]")
    page.wait_for_url("**/backtest/sweeps/*/")
    sweep = Sweep.objects.get()
    assert sweep.total == 120
    # results arrive live over the websocket while the sweep runs
    page.wait_for_function("Number(document.getElementById('sweep-live').dataset.received || 0) > 0", timeout=60000)
    page.wait_for_function("document.getElementById('sweep-live').dataset.ended === '1'", timeout=90000)
    assert page.get_attribute("#sweep-live", "data-received") == "120"
    assert page.inner_text("[data-testid=sweep-status]").strip() == "Succeeded"
    assert page.locator("[data-testid=live-results] tbody tr").count() == 15
    # the best-results table (refreshed at the end), sorted by Sharpe
    page.wait_for_function("document.querySelectorAll('[data-testid=open-result]').length >= 10")
    # heatmap of Sharpe over fast × slow
    page.select_option("select[name=x]", "fast")
    page.select_option("select[name=y]", "slow")
    page.click("[data-testid=heatmap-submit]")
    page.wait_for_selector("[data-testid=heatmap-chart] svg", timeout=20000)
    # open the best run: it is computed by the worker, then the page shows its charts
    page.locator("[data-testid=open-result]").first.click()
    page.wait_for_url("**/backtest/runs/*/")
    page.wait_for_selector("[data-testid=equity-chart] svg", timeout=60000)
    page.wait_for_selector("[data-testid=drawdown-chart] svg")
    page.wait_for_selector("[data-testid=trades-chart] svg")
    assert page.inner_text("[data-testid=run-status]").strip() == "Succeeded"
    run = BacktestRun.objects.get()
    best = max(sweep.results.all(), key=lambda r: r.metrics["sharpe"] if r.metrics["sharpe"] is not None else -1e9)
    assert run.params == best.params and run.result.metrics["sharpe"] == pytest.approx(best.metrics["sharpe"])
    assert page.locator("[data-metric=sharpe]").inner_text().strip().startswith(f"{best.metrics['sharpe']:,.2f}")
