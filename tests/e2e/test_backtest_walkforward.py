"""Walk-forwards end to end: a real ASGI server and a real worker; a websocket client and a browser."""

import asyncio

import pytest

from backtest.models import WalkForward
from tests.e2e.test_backtest_sweep import _stream, btc  # noqa: F401 - btc is a fixture

pytestmark = pytest.mark.e2e


def test_windows_stream_over_the_websocket_and_cancel_stops_the_worker(live_platform, user, btc, auth_client):
    client = auth_client(user)
    created = client.post("/api/backtest/walkforwards/", {
        "symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "grid": {"fast": [5, 10], "slow": [50]},
        "in_sample_bars": 1000, "out_of_sample_bars": 500,
    }, format="json").json()
    messages = asyncio.run(_stream(f"{live_platform.ws_url}{created['stream']}", client.token))
    windows = [m["data"] for m in messages if m["type"] == "event" and m["kind"] == "window"]
    assert [w["index"] for w in windows] == list(range(6)), live_platform.output()
    assert [m for m in messages if m["type"] == "status"][-1]["job"]["status"] == "succeeded"
    assert all(w["params"]["fast"] in (5, 10) for w in windows)
    # a long one, cancelled at its first window: the worker stops before the last window
    created = client.post("/api/backtest/walkforwards/", {
        "symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "mode": "anchored",
        "grid": {"fast": {"start": 2, "stop": 100, "step": 1}, "slow": [120, 160, 200]},
        "in_sample_bars": 1000, "out_of_sample_bars": 200,
    }, format="json").json()
    assert created["window_count"] == 15

    def cancel():
        assert client.post(f"/api/backtest/walkforwards/{created['id']}/cancel/").status_code == 202

    messages = asyncio.run(_stream(f"{live_platform.ws_url}{created['stream']}", client.token,
                                   on_first_result=cancel, first_kind="window"))
    assert messages[-1]["type"] == "end"
    wf = WalkForward.objects.get(pk=created["id"])
    assert wf.status == "cancelled", live_platform.output()
    assert 1 <= wf.windows_done < wf.window_count


def test_browser_runs_a_walkforward_and_sees_the_windows_and_the_chart(live_platform, user, btc, browser_page,
                                                                       login_page):
    page = login_page(browser_page, live_platform, user)
    page.goto(live_platform.url + "/backtest/walkforwards/new/")
    assert page.is_visible("[data-testid=walkforward-rules]")
    page.select_option("select[name=strategy]", "ema_cross")
    assert page.get_attribute("[data-testid=strategy-link]", "href") == "/backtest/strategies/ema_cross/"
    page.fill("textarea[name=grid]", '{"fast": {"start": 4, "stop": 40, "step": 4}, "slow": [60, 120]}')
    page.select_option("select[name=mode]", "rolling")
    page.fill("input[name=in_sample_bars]", "1000")
    page.fill("input[name=out_of_sample_bars]", "500")
    page.select_option("select[name=metric]", "sortino")
    page.click("[data-testid=walkforward-submit]")
    page.wait_for_url("**/backtest/walkforwards/*/")
    wf = WalkForward.objects.get()
    assert (wf.combos, wf.window_count, wf.metric) == (20, 6, "sortino")
    # when the job ends the page reloads with the result: the windows table and the stitched chart
    page.wait_for_selector("[data-testid=walkforward-windows]", timeout=90000)
    assert page.inner_text("[data-testid=walkforward-status]").strip() == "Succeeded", live_platform.output()
    assert page.locator("[data-testid=window-row]").count() == 6
    page.wait_for_selector("[data-testid=walkforward-equity-chart] svg", timeout=30000)
    page.wait_for_selector("[data-testid=walkforward-drawdown-chart] svg")
    wf.refresh_from_db()
    first = page.locator("[data-testid=window-row]").first.inner_text()
    assert f"fast {wf.windows[0]['params']['fast']}" in first and f"slow {wf.windows[0]['params']['slow']}" in first
    assert page.locator("[data-testid=walkforward-degradation] tbody tr").count() == 6
    assert not page.is_visible("[data-testid=walkforward-cancel]")
