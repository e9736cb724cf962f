"""The backtest's time charts can be explored in a real browser: the wheel zooms along time, and the crosshair
follows the pointer on every chart of the page at once (equity, drawdown, trades)."""

from __future__ import annotations

import pytest

from conftest import wait_until
from tests.e2e.pages import BACKTEST_CHART, login
from tests.e2e.test_page_layout import AXE, AXE_RUN

pytestmark = pytest.mark.e2e

DOMAIN = "(sel) => document.querySelector(sel).__view.scale('x').domain().map(Number)"
CURSOR = "(sel) => document.querySelector(sel).__view.signal('crosshair')"


def test_backtest_charts_zoom_and_share_one_crosshair(prod, user, browser_page, sync_jobs):
    from backtest import market_services, services

    instrument = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE", name="Ether")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=400, start="2024-01-01", seed=3,
                                  start_price=2_000)
    run, _ = services.backtest_run_create(owner=user, instrument=instrument, interval="1h", strategy="sma_cross",
                                 params={"fast": 5, "slow": 30})
    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    login(page, prod["url"], user)
    page.goto(prod["url"] + f"/backtest/runs/{run.pk}/")
    page.wait_for_selector(BACKTEST_CHART, timeout=30000)
    charts = ["[data-testid=equity-chart]", "[data-testid=drawdown-chart]", "[data-testid=trades-chart]"]
    wait_until(lambda: page.locator(".vega-chart[data-explore='1']").count() == 3, timeout=30,
               message="three explorable charts")
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(AXE_RUN) == []  # the added layers leave the charts accessible

    # The crosshair: the pointer over the equity chart puts the same time on the other two.
    equity = page.locator(charts[0] + " svg.marks").bounding_box()
    page.mouse.move(equity["x"] + equity["width"] * 0.5, equity["y"] + equity["height"] * 0.6)
    wait_until(lambda: page.evaluate(CURSOR, charts[1]) is not None, timeout=10, message="crosshair on drawdown")
    cursor = page.evaluate(CURSOR, charts[0])
    assert cursor is not None
    assert page.evaluate(CURSOR, charts[1]) == cursor == page.evaluate(CURSOR, charts[2])
    start, end = page.evaluate(DOMAIN, charts[0])
    assert start < cursor < end

    # The wheel zooms in on time: the domain narrows, inside the old one.
    page.mouse.wheel(0, -400)
    wait_until(lambda: page.evaluate(DOMAIN, charts[0]) != [start, end], timeout=10, message="zoomed")
    z_start, z_end = page.evaluate(DOMAIN, charts[0])
    assert start <= z_start < z_end <= end and (z_end - z_start) < (end - start)
    page.mouse.move(5, 5)  # leaving the chart clears the crosshair everywhere
    wait_until(lambda: page.evaluate(CURSOR, charts[2]) is None, timeout=10, message="crosshair cleared")
    assert errors == [], "\n".join(errors)
