"""The trade export page in a real browser against a real server and worker:
pick exchanges with the keyboard, type an invalid then a valid expression, preview,
export, watch progress over the websocket, download the file."""

import hashlib

import pytest

from core.models import JobStatus
from trades.loading import trades_generate
from trades.models import Export

pytestmark = pytest.mark.e2e


def test_query_page_end_to_end(live_platform, browser_page, login_page, user):
    trades_generate(tickers=4, days=3, rows=20_000, seed=3)
    page = browser_page
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login_page(page, live_platform, user)
    page.goto(live_platform.url + "/trades/")

    # exchanges: autocomplete + keyboard (arrows, Enter, Backspace), count in the label
    combo = page.get_by_test_id("exchange-input")
    combo.click()
    combo.type("xnas")  # by MIC
    page.get_by_test_id("exchange-options").wait_for(state="visible", timeout=5000) if not errors else None
    assert not errors, errors
    combo.press("Enter")
    combo.type("ar")  # NYSE Arca, Cboe BZX ... : pick with the arrows
    combo.press("ArrowDown")
    combo.press("ArrowUp")
    combo.press("Enter")
    assert page.get_by_test_id("exchange-pill").count() == 2
    assert page.get_by_test_id("exchange-count").inner_text() == "(2)"
    combo.press("Backspace")
    assert page.get_by_test_id("exchange-count").inner_text() == "(1)"
    combo.type("nyse arca")
    combo.press("Enter")
    pills = page.get_by_test_id("exchange-pill").all_inner_texts()
    assert any("NASDAQ (12)" in p for p in pills) and any("ARCA (11)" in p for p in pills)

    # expression: invalid then valid, validated by the server as we type
    expr = page.get_by_test_id("expression-input")
    expr.type("p*")  # smart typing completes PRICE; an expression that ends in an operator is refused by the server
    error = page.get_by_test_id("expression-error")
    error.wait_for()
    assert "'*' needs a number, PRICE or SIZE after it" in error.inner_text()
    expr.fill("")
    expr.type("p * s")
    page.get_by_test_id("expression-ok").wait_for()
    expr.press("Enter")
    page.get_by_test_id("operation-pill").wait_for()
    assert page.get_by_test_id("operation-pill").inner_text().startswith("PRICE*SIZE")
    assert page.get_by_test_id("aggregateby").is_visible()
    assert not page.get_by_test_id("sortby").is_visible()

    # preview: first rows and an estimate
    page.get_by_test_id("preview-button").click()
    table = page.get_by_test_id("preview-table")
    table.wait_for()
    assert "sum(PRICE*SIZE)" in table.inner_text()
    assert "rows" in page.get_by_test_id("preview-count").inner_text()

    # export: confirm (no reset), live progress, download when done
    page.get_by_test_id("export-button").click()
    page.get_by_test_id("export-dialog").wait_for()
    with page.expect_download(timeout=60_000) as info:
        page.get_by_test_id("export-no").click()
    download = info.value
    data = open(download.path(), "rb").read()
    export = Export.objects.get(owner=user)
    assert export.status == JobStatus.SUCCEEDED, live_platform.output()
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert data.startswith(b"bucket_start,ticker,trade_count,open,high,low,close,total_size,sum(PRICE*SIZE)")
    assert page.get_by_test_id("export-state").inner_text() == "Succeeded"
    assert "rows written" in page.get_by_test_id("export-message").inner_text()
    assert any(f"/ws/trades/exports/{export.pk}/" in url for url in sockets)
    # filters kept (answered "No"); Reset clears everything
    assert page.get_by_test_id("exchange-pill").count() == 2
    page.get_by_test_id("reset-button").click()
    assert page.get_by_test_id("exchange-pill").count() == 0 and page.get_by_test_id("operation-pill").count() == 0

    # resume download fetches the latest finished file
    with page.expect_download(timeout=30_000) as again:
        page.get_by_test_id("resume-button").click()
    assert hashlib.sha256(open(again.value.path(), "rb").read()).hexdigest() == export.sha256
