"""A portfolio run from the page, end to end: a real ASGI server, a real worker, a real browser under the
platform's Content-Security-Policy."""

import pytest

from backtest import market_services
from backtest.models import Portfolio
from tests.e2e.pages import BACKTEST_CHART, Watched

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_instruments(transactional_db):
    btc = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=btc, interval="1h", bars=3000, start="2024-01-01", seed=3,
                                  start_price=40_000)
    eth = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=eth, interval="1h", bars=2500, start="2024-01-15", seed=4,
                                  start_price=2_000)
    return btc, eth


def test_browser_runs_a_portfolio_and_sees_its_metrics_and_allocation(live_platform, user, two_instruments,
                                                                      csp_browser_page, login_page):
    page = login_page(csp_browser_page, live_platform, user)
    watched = Watched(page, live_platform.url)
    watched.visit("/backtest/portfolios/new/")
    assert "free cash" in page.inner_text("[data-testid=portfolio-rules]")
    page.check("input[name=instruments][value=BTCUSDT]")
    page.check("input[name=instruments][value=ETHUSDT]")
    page.check("input[name=mode][value=signals]")
    page.select_option("select[name=weighting]", "inverse_vol")
    page.select_option("select[name=strategy]", "ema_cross")
    page.fill("textarea[name=params]", '{"fast": 12, "slow": 48}')
    page.click("[data-testid=portfolio-submit]")
    page.wait_for_url("**/backtest/portfolios/*/")
    # the worker runs it; the page polls, then reloads once with the charts
    page.wait_for_selector("[data-testid=allocation-chart]" + BACKTEST_CHART[len(".vega-chart"):], timeout=90000)
    page.wait_for_selector("[data-testid=equity-chart] svg.marks")
    portfolio = Portfolio.objects.get()
    assert portfolio.status == "succeeded", live_platform.output()
    assert page.inner_text("[data-testid=portfolio-status]").strip() == "Succeeded"
    legend = page.inner_text("[data-testid=allocation-chart]")
    for holding in ("BTCUSDT", "ETHUSDT", "Cash"):
        assert holding in legend, legend
    sharpe = portfolio.metrics["sharpe"]
    assert page.locator("[data-metric=sharpe]").inner_text().strip().startswith(f"{sharpe:,.2f}")
    assert page.locator("[data-metric=trades]").inner_text().strip() == f"{portfolio.metrics['trades']:,}"
    rows = page.locator("[data-testid=contributions] tbody tr")
    assert rows.count() == 2
    pnl = {c["symbol"]: c["pnl"] for c in portfolio.contributions}
    assert page.locator("[data-contribution=ETHUSDT]").inner_text().strip() == f"{pnl['ETHUSDT']:,.2f}"
    page.wait_for_load_state("networkidle")
    assert watched.problems() == []
