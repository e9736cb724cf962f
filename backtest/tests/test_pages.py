"""Server-rendered pages: forms, detail pages with charts, HTMX fragments, ownership."""

import json

import pytest
from django.urls import reverse

from backtest import services
from backtest.models import BacktestRun, Sweep


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_login_required(client):
    assert client.get(reverse("backtest:index")).status_code == 302


@pytest.mark.django_db
def test_index_and_instrument_pages(browser, btc, aapl, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = browser.get(reverse("backtest:index"))
    assert page.status_code == 200 and b"BTCUSDT" in page.content and b"SMA crossover" in page.content
    page = browser.get(reverse("backtest:instrument_detail", args=["aapl"]), {"interval": "1d"})
    text = page.content.decode()
    assert page.status_code == 200 and 'id="spec-price"' in text and "Statistics" in text
    assert browser.get(reverse("backtest:instrument_detail", args=["NOPE"])).status_code == 404
    assert browser.get(reverse("backtest:instrument_detail", args=["AAPL"]), {"interval": "bad"}).status_code == 200


@pytest.mark.django_db
def test_new_run_form_shows_field_errors(browser, btc):
    url = reverse("backtest:run_new")
    assert browser.get(url).status_code == 200
    bad = browser.post(url, {"instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross",
                             "params": '{"fast": 50, "slow": 10}', "commission_bps": 10, "slippage_bps": 0,
                             "initial_cash": 10000})
    assert bad.status_code == 200 and b"fast: The fast period must be shorter" in bad.content
    bad_json = browser.post(url, {"instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross",
                                  "params": "{fast: 5", "commission_bps": 10, "slippage_bps": 0, "initial_cash": 1})
    assert b"must be valid JSON" in bad_json.content
    assert BacktestRun.objects.count() == 0


@pytest.mark.django_db
def test_run_page_shows_metrics_and_charts(sync_jobs, browser, btc):
    response = browser.post(reverse("backtest:run_new"), {
        "instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "params": '{"fast": 5, "slow": 30}',
        "commission_bps": 10, "slippage_bps": 0, "initial_cash": 10000,
    })
    sync_jobs.commit()
    run = BacktestRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("backtest:backtestrun_detail", args=[run.pk])
    page = browser.get(response.url).content.decode()
    for marker in ('id="spec-equity"', 'id="spec-drawdown"', 'id="spec-trades"', 'data-metric="sharpe"',
                   "next bar&#x27;s open", "Trades ("):
        assert marker in page, marker
    spec = json.loads(page.split('id="spec-equity" type="application/json">')[1].split("</script>")[0])
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


@pytest.mark.django_db
def test_unfinished_run_polls_and_refreshes_when_done(browser, user, btc):
    run, _ = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold")  # queued
    fragment = browser.get(reverse("backtest:backtestrun_detail", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in fragment.content and "HX-Refresh" not in fragment
    from backtest import tasks

    tasks.backtest_run_execute(run.pk)
    done = browser.get(reverse("backtest:backtestrun_detail", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"


@pytest.mark.django_db
def test_sweep_pages(sync_jobs, browser, user, btc):
    url = reverse("backtest:sweep_new")
    assert browser.get(url).status_code == 200
    bad = browser.post(url, {"instruments": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross",
                             "grid": '{"fast": [500], "slow": [10]}', "commission_bps": 10, "slippage_bps": 0,
                             "initial_cash": 10000})
    sync_jobs.commit()
    assert b"No parameter set" in bad.content and Sweep.objects.count() == 0
    response = browser.post(url, {"instruments": ["BTCUSDT"], "interval": "1h", "strategy": "sma_cross",
                                  "grid": '{"fast": [5, 10], "slow": [30, 60]}', "commission_bps": 10,
                                  "slippage_bps": 0, "initial_cash": 10000})
    sync_jobs.commit()
    sweep = Sweep.objects.get()
    assert response.status_code == 302
    page = browser.get(response.url, {"sort": "return_pct", "dir": "asc"}).content.decode()
    assert f'data-ws="/ws/backtest/sweeps/{sweep.pk}/"' in page and page.count('data-testid="open-result"') == 4
    table = browser.get(response.url, {"sort": "sqn"}, HTTP_HX_REQUEST="true").content.decode()
    assert table.lstrip().startswith('<div id="results-table"') and "SQN ↓" in table
    heat = browser.get(reverse("backtest:sweep_heatmap", args=[sweep.pk]), {"x": "fast", "y": "slow", "metric": "sharpe"})
    assert b'id="spec-heatmap"' in heat.content
    heat_bad = browser.get(reverse("backtest:sweep_heatmap", args=[sweep.pk]), {"x": "nope", "y": "slow"})
    assert heat_bad.status_code == 200 and b"field-error" in heat_bad.content
    best = sweep.results.order_by("seq").first()
    opened = browser.post(reverse("backtest:sweep_result_open", args=[sweep.pk, best.seq]))
    sync_jobs.commit()
    run = BacktestRun.objects.get()
    assert opened.url == reverse("backtest:backtestrun_detail", args=[run.pk]) and run.params == best.params
    again = browser.post(reverse("backtest:sweep_result_open", args=[sweep.pk, best.seq]))
    sync_jobs.commit()
    assert again.url == opened.url and BacktestRun.objects.count() == 1


@pytest.mark.django_db
def test_pages_hide_other_users_objects(sync_jobs, client, user, other_user, btc):
    run, _ = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold")
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5]})
    client.force_login(other_user)
    assert client.get(reverse("backtest:backtestrun_detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("backtest:sweep_detail", args=[sweep.pk])).status_code == 404
    assert client.get(reverse("backtest:sweep_heatmap", args=[sweep.pk])).status_code == 404
    assert client.post(reverse("backtest:sweep_cancel", args=[sweep.pk])).status_code == 404
    assert client.post(reverse("backtest:sweep_result_open", args=[sweep.pk, 1])).status_code == 404
    listing = client.get(reverse("backtest:run_list")).content.decode()
    assert f"#{run.pk}" not in listing and "No backtests yet" in listing


@pytest.mark.django_db
def test_cancel_from_the_page(browser, user, btc):
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10]})
    response = browser.post(reverse("backtest:sweep_cancel", args=[sweep.pk]))
    assert response.status_code == 302
    sweep.refresh_from_db()
    assert sweep.status == "cancelled"


@pytest.mark.django_db
def test_run_page_survives_changed_bars(sync_jobs, browser, user, btc):
    from backtest.models import PriceBar

    run, _ = services.backtest_run_create(owner=user, instrument=btc, interval="1h", strategy="buy_hold")
    sync_jobs.commit()
    PriceBar.objects.filter(instrument=btc).order_by("open_time")[:1].get().delete()
    page = browser.get(reverse("backtest:backtestrun_detail", args=[run.pk]))
    assert page.status_code == 200 and b"have changed since this result" in page.content
    assert b'id="spec-drawdown"' in page.content and b'id="spec-equity"' not in page.content


@pytest.mark.django_db
def test_run_form_explains_the_execution_options_and_the_page_shows_exit_reasons(sync_jobs, browser, btc):
    form = browser.get(reverse("backtest:run_new")).content.decode()
    assert 'data-testid="execution-help"' in form
    for text in ("<code>entry</code>", "state | cross", "<code>stop_loss</code>", "<code>trailing_stop</code>",
                 "pct | atr", "equity | units", "<code>finalize_trades</code>", "the stop fills first"):
        assert text in form, text
    assert 'data-testid="execution-help"' in browser.get(reverse("backtest:sweep_new")).content.decode()
    response = browser.post(reverse("backtest:run_new"), {
        "instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "commission_bps": 10,
        "params": '{"fast": 5, "slow": 30, "entry": "cross", "stop_loss": 0.5, "take_profit": 1}',
        "slippage_bps": 0, "initial_cash": 10000,
    })
    assert response.status_code == 302
    sync_jobs.commit()
    run = BacktestRun.objects.get()
    reasons = {t["exit_reason"] for t in run.result.trades}
    assert {"stop", "target"} <= reasons
    page = browser.get(response.url).content.decode()
    assert "<th>Exit</th>" in page and "<td>stop</td>" in page and "<td>target</td>" in page
    bad = browser.post(reverse("backtest:run_new"), {
        "instrument": "BTCUSDT", "interval": "1h", "strategy": "sma_cross", "commission_bps": 10,
        "params": '{"entry": "sometimes"}', "slippage_bps": 0, "initial_cash": 10000,
    })
    assert bad.status_code == 200 and b"entry: Choose one of state, cross" in bad.content
