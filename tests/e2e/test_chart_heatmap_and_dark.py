"""Charts in a real browser: the sweep heatmap's cells tell their parameters and open their result on a click
(a page handler: the spec has no link), and charts take the page's dark colours in dark mode, drawn again
when the system's mode changes."""

from __future__ import annotations

import re

import pytest

from conftest import wait_until
from tests.e2e.pages import BACKTEST_CHART, login
from tests.e2e.test_page_layout import AXE, AXE_RUN

pytestmark = pytest.mark.e2e

HEATMAP = "[data-testid=heatmap-chart]"
BACKGROUND = "(sel) => document.querySelector(sel).__view.background()"


def _instrument(symbol: str, seed: int):
    from backtest import market_services

    instrument = market_services.instrument_create(symbol=symbol, kind="crypto", exchange="BINANCE", name=symbol)
    market_services.bars_generate(instrument=instrument, interval="1h", bars=400, start="2024-01-01", seed=seed,
                                  start_price=2_000)
    return instrument


def test_heatmap_cells_show_their_parameters_and_open_their_result(prod, user, browser_page, sync_jobs):
    from backtest import services
    from backtest.models import BacktestRun, Sweep

    instrument = _instrument("SOLUSDT", 5)
    sweep = services.sweep_create(owner=user, instruments=[instrument], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10, 15], "slow": [30, 60]})
    assert Sweep.objects.get(pk=sweep.pk).results.count() == 6
    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    login(page, prod["url"], user)
    page.goto(prod["url"] + f"/backtest/sweeps/{sweep.pk}/")
    # The finished sweep's page refreshes its results table once; the layout is still after that.
    page.wait_for_selector("#sweep-live[data-ended='1']", timeout=30000)
    page.wait_for_load_state("networkidle")
    page.select_option("select[name=x]", "fast")
    page.select_option("select[name=y]", "slow")
    page.select_option("select[name=metric]", "return_pct")
    page.click("[data-testid=heatmap-submit]")
    page.wait_for_selector(HEATMAP + "[data-rendered='done'] svg.marks", timeout=30000)
    spec_text = page.inner_text("#spec-heatmap")
    assert "href" not in spec_text and "http" not in spec_text.replace("https://vega.github.io/schema", "")

    cells = page.locator(HEATMAP + " g.mark-rect.role-mark path")
    assert cells.count() == 6
    cell = cells.nth(2)
    cell.scroll_into_view_if_needed()
    cell.hover()
    tooltip = page.locator("#vg-tooltip-element.visible")
    tooltip.wait_for(timeout=10000)
    text = tooltip.inner_text()
    seq = int(re.search(r"Result #\s*(\d+)", text).group(1))
    result = sweep.results.get(seq=seq)
    from core.templatetags.platform_format import params_text

    assert params_text(result.params) in text and "fast" in text, text
    assert "Return" in text and "SOLUSDT" in text
    assert f"{result.metrics['return_pct']:,.3f}" in text, (text, result.metrics["return_pct"])

    cell.click()
    page.wait_for_url("**/backtest/runs/*/", timeout=30000)
    run = BacktestRun.objects.get()
    assert page.url.endswith(f"/backtest/runs/{run.pk}/")
    assert run.params == result.params and run.instrument_id == instrument.pk
    assert errors == [], "\n".join(errors)


def test_charts_take_the_dark_colours_and_follow_a_change_of_mode(prod, user, browser_page, sync_jobs):
    from backtest import services

    run, _ = services.backtest_run_create(owner=user, instrument=_instrument("ADAUSDT", 7), interval="1h",
                                 strategy="sma_cross", params={"fast": 5, "slow": 30})
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.emulate_media(color_scheme="dark")
    login(page, prod["url"], user)
    page.goto(prod["url"] + f"/backtest/runs/{run.pk}/")
    page.wait_for_selector(BACKTEST_CHART, timeout=30000)
    chart = "[data-testid=equity-chart]"
    page_background = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--pico-background-color').trim()")
    assert page_background and page_background.lower() not in ("#fff", "#ffffff", "white")
    wait_until(lambda: page.evaluate(BACKGROUND, chart) == page_background, timeout=10, message="dark chart")
    assert page.get_attribute(chart, "data-scheme") == "dark"
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(AXE_RUN) == []

    # The system turns light: every chart is drawn again in Vega's light colours, still explorable.
    page.emulate_media(color_scheme="light")
    wait_until(lambda: page.get_attribute(chart, "data-scheme") == "light", timeout=10, message="redrawn light")
    wait_until(lambda: page.evaluate(BACKGROUND, chart) in ("white", "#fff", "#ffffff"), timeout=10,
               message="light background")
    assert page.locator(".vega-chart[data-scheme='light']").count() == page.locator(".vega-chart").count() == 3
    page.wait_for_selector(chart + " svg.marks")
    assert page.evaluate("(sel) => document.querySelector(sel).__view.signal('crosshair')", chart) is None
