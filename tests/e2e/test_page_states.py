"""What a page shows stays true after the user acts, in a real browser against the platform as in production:
the Stop button of a run that ended, the trade export's "Please fix" box once the field is fixed, its Tab order
and labels, the ETL calendar's legend and selection count after queueing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import wait_until
from tests.e2e.pages import login

pytestmark = pytest.mark.e2e


def test_stop_button_of_a_run_that_ended_is_not_left_stopping(prod, root_user, browser_page):
    from scripts_runner import services

    script = services.script_create(owner=root_user, name="wait.py", code=b"import time\ntime.sleep(60)\n")
    run = services.script_run_create(script=script, user=root_user)  # queued: no worker takes this queue
    page = browser_page
    login(page, prod["url"], root_user)
    page.goto(prod["url"] + f"/scripts/runs/{run.pk}/")
    wait_until(lambda: page.get_by_test_id("live-state").inner_text() == "live", timeout=15, message="log live")
    stop = page.get_by_test_id("stop-button")
    stop.click()
    # The queued run is cancelled at once; the stream reports it and ends.
    wait_until(lambda: page.get_by_test_id("live-state").inner_text() == "finished", timeout=15,
               message="the stream ends")
    wait_until(lambda: stop.inner_text() == "Stop", timeout=5, message="the button leaves 'Stopping…'")
    assert stop.is_disabled()
    assert page.get_by_test_id("run-status").inner_text() == "cancelled"


def test_trade_export_fix_box_goes_once_the_field_is_fixed(prod, user, browser_page):
    from trades.loading import trades_generate

    trades_generate(tickers=3, days=3, rows=600, seed=5)
    page = browser_page
    login(page, prod["url"], user)
    page.goto(prod["url"] + "/trades/")
    low, high = page.get_by_test_id("datelow"), page.get_by_test_id("datehigh")
    first, last = low.get_attribute("min"), low.get_attribute("max")
    assert first < last
    low.fill(last)
    high.fill(first)
    page.get_by_test_id("preview-button").click()
    box = page.locator("#preview [data-testid=form-errors]")
    box.wait_for()
    assert "The end date must not be before the start date." in box.inner_text()
    high.fill(last)  # fixed: the box gives way to the preview
    page.get_by_test_id("preview-table").wait_for()
    assert box.count() == 0


def test_trade_export_expression_has_a_label_and_no_dead_tab_stop(prod, user, browser_page):
    from trades.loading import trades_generate

    trades_generate(tickers=3, days=3, rows=600, seed=5)  # exchanges, so the option list opens on focus
    page = browser_page
    login(page, prod["url"], user)
    page.goto(prod["url"] + "/trades/")
    assert page.get_by_label("New expression").get_attribute("id") == "expression-input"
    page.get_by_test_id("exchange-input").click()
    page.get_by_test_id("exchange-options").wait_for()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('data-testid') || document.activeElement.outerHTML")
    assert focused == "datelow"


def test_etl_legend_and_selection_count_follow_the_queued_cells(prod, admin_user, browser_page):
    from django.utils import timezone

    from etl.models import Branch, FileSource

    source = FileSource.objects.create(name="POS host", kind=FileSource.Kind.HTTP,
                                       list_url_template="http://127.0.0.1:9/{branch}/{pos}/{date}/",
                                       download_url_template="http://127.0.0.1:9/{branch}/{pos}/{date}/{name}")
    opened = timezone.localdate() - timedelta(days=4)
    Branch.objects.create(code="L01", name="Legend branch", is_new_branch=True, source=source, opened_on=opened)
    page = browser_page
    login(page, prod["url"], admin_user)
    page.goto(prod["url"] + "/etl/missing/")
    legend = page.get_by_test_id("legend")

    def count(state):
        return int(legend.locator(f"[data-legend={state}]").inner_text())

    missing_before, running_before = count("missing"), count("running")
    assert missing_before > 0 and running_before == 0
    page.get_by_test_id("select-missing").click()
    selected = page.locator("[data-selected-count]")
    assert int(selected.inner_text()) == missing_before
    page.get_by_test_id("queue-selected").click()
    page.get_by_test_id("confirm-queue").click()
    page.get_by_test_id("queued-box").wait_for()
    wait_until(lambda: count("running") == missing_before, timeout=15, message="queued cells counted as queued")
    assert count("missing") == 0
    assert selected.inner_text() == "0"
    assert page.locator(".calendar input[name=cell]:checked").count() == 0


def test_trade_export_progress_shows_share_rate_and_time_left(prod, user, browser_page, monkeypatch):
    from core.jobkit import JobReporter
    from core.services import job_start, job_succeed
    from trades import conf as trades_conf
    from trades.loading import trades_generate
    from trades.models import Exchange, Export
    from trades.params import ExportParams
    from trades.services import _Progress, export_request

    trades_generate(tickers=2, days=2, rows=300, seed=7)
    monkeypatch.setattr(trades_conf, "EXPORT_PROGRESS_SECONDS", 0)
    export = export_request(user=user, params=ExportParams(exchanges=(Exchange.objects.first().pk,))).export
    assert job_start(job=export)  # as the worker does; none runs here, the test writes the progress itself
    Export.objects.filter(pk=export.pk).update(estimated_rows=48_000)
    progress = _Progress(JobReporter(export, progress_seconds=0, inline=True), 48_000)
    progress(12_000)
    page = browser_page
    login(page, prod["url"], user)
    page.goto(prod["url"] + f"/trades/exports/{export.pk}/")
    message = page.get_by_test_id("export-message")
    wait_until(lambda: message.inner_text().startswith("12,000 of ~48,000 rows (25%)"), timeout=15,
               message="share of the estimate")
    page.wait_for_timeout(1200)
    progress(24_000)
    wait_until(lambda: "rows/s" in message.inner_text(), timeout=15, message="rows per second")
    text = message.inner_text()
    assert text.startswith("24,000 of ~48,000 rows (50%) · ") and text.endswith(" left"), text
    job_succeed(job=export, message="24,000 rows written")
    wait_until(lambda: page.get_by_test_id("export-state").inner_text() == "Succeeded", timeout=15,
               message="finished")


def test_trade_expression_smart_typing(prod, user, browser_page):
    page = browser_page
    login(page, prod["url"], user)
    page.goto(prod["url"] + "/trades/")
    expr = page.get_by_test_id("expression-input")
    hint = page.get_by_test_id("expression-hint")
    expr.click()
    page.keyboard.type("p*-s")  # P and S complete; the unary minus wraps its operand
    assert expr.input_value() == "PRICE*-(SIZE)"
    page.get_by_test_id("expression-ok").wait_for()
    page.keyboard.type("%")  # never part of an expression: refused, with a hint
    assert expr.input_value() == "PRICE*-(SIZE)"
    assert '"%" cannot be part of an expression' in hint.inner_text()
    page.keyboard.press("End")
    page.keyboard.type("+*")  # an operator where an operand must come is refused
    assert expr.input_value() == "PRICE*-(SIZE)+"
    assert '"*" needs a number, PRICE or SIZE before it.' == hint.inner_text()
    # A unary plus wraps its operand like a minus, and the server accepts it.
    expr.fill("")
    page.keyboard.type("s*+p")
    assert expr.input_value() == "SIZE*+(PRICE)"
    page.locator("[data-testid=expression-ok]", has_text="Valid: SIZE*+(PRICE)").wait_for()
    expr.fill("PRICE*-(SIZE)+")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")  # into SIZE: the partial word goes whole
    assert expr.input_value() == "PRICE*-("
    # A paste is checked whole: words other than PRICE and SIZE are refused, the rest is taken as pasted.
    expr.fill("")
    page.evaluate("""() => { const i = document.getElementById('expression-input'); i.focus();
        document.execCommand('insertText', false, 'size/2 + price'); }""")
    assert expr.input_value() == "SIZE/2 + PRICE"
    page.evaluate("""() => document.execCommand('insertText', false, ' + volume')""")
    assert expr.input_value() == "SIZE/2 + PRICE"
    assert "Only PRICE and SIZE" in hint.inner_text()
