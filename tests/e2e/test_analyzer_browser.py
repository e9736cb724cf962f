"""In a real browser against a real server and worker: upload, live processing, preview, auto-analysis charts,
ask, reload, history."""

import random
from datetime import date, timedelta

import pytest

pytestmark = pytest.mark.e2e


def trades_csv(path, rows=300):
    rng = random.Random(3)
    start = date(2024, 1, 1)
    lines = ["date,symbol,side,qty,price"]
    for i in range(rows):
        lines.append(f"{start + timedelta(days=i % 90)},{rng.choice(['AAPL', 'MSFT', 'GOOG', 'TSLA'])},"
                     f"{rng.choice(['buy', 'sell'])},{rng.randint(1, 50)},{rng.uniform(100, 400):.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_upload_analyze_ask_reload_history(live_platform, browser_page, login_page, user, tmp_path):
    page = browser_page
    login_page(page, live_platform, user)
    page.goto(live_platform.url + "/analyzer/")
    assert page.locator("[data-testid=history-empty]").is_visible()

    # Picking a file only chooses it: its name and size show, nothing is sent until Upload; a wrong pick is
    # refused on the spot and a new pick replaces it.
    wrong = tmp_path / "notes.txt"
    wrong.write_text("hello\n")
    page.set_input_files("[data-testid=upload-input]", str(wrong))
    assert "Unsupported file type" in page.inner_text("[data-testid=upload-error]")
    assert page.locator("[data-testid=upload-button]").is_disabled()
    assert not page.locator("[data-testid=upload-choice]").is_visible()

    # What the upload request can check cheaply is refused at once, without leaving the page.
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\x01\x02\x03")
    page.set_input_files("[data-testid=upload-input]", str(binary))
    assert page.inner_text("[data-testid=upload-choice]") == "binary.csv · 4 bytes — ready to upload"
    assert page.locator("[data-testid=upload-error]").is_hidden()
    assert page.url.endswith("/analyzer/")
    page.click("[data-testid=upload-button]")
    page.wait_for_selector("[data-testid=upload-error]:not([hidden])")
    assert "does not look like a CSV" in page.inner_text("[data-testid=upload-error]")

    # A file with only a header is found by the processing job: the session page shows the reason, live.
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,c\n")
    page.set_input_files("[data-testid=upload-input]", str(header_only))
    page.click("[data-testid=upload-button]")
    page.wait_for_url("**/analyzer/sessions/*/")
    page.wait_for_selector("[data-testid=processing-error]", timeout=60000)
    assert "no data rows" in page.inner_text("[data-testid=processing-error]")
    assert page.locator("[data-testid=chat-send]").is_disabled()
    assert page.locator("[data-testid=chat-input]").is_disabled()

    # The upload answers before any processing: with the worker stopped, the page shows the queued job…
    page.goto(live_platform.url + "/analyzer/")
    live_platform.stop_worker()
    try:
        page.set_input_files("[data-testid=upload-input]", str(trades_csv(tmp_path / "trades.csv")))
        page.click("[data-testid=upload-button]")
        page.wait_for_url("**/analyzer/sessions/*/")
        page.wait_for_selector("[data-testid=processing]")
        assert page.locator("[data-testid=chat-send]").is_disabled()
        page.evaluate("window.__sameDocument = true")
    finally:
        live_platform.start_worker()
    # …and when a worker has processed it, the result appears live (no reload), then the auto-analysis.
    page.wait_for_selector("[data-testid=detected]", timeout=60000)
    assert page.evaluate("window.__sameDocument === true")
    assert page.locator("[data-testid=processing]").count() == 0
    assert "300 rows × 5 columns" in page.inner_text("[data-testid=session-subtitle]")
    assert "comma-delimited, with header" in page.inner_text("[data-testid=detected]")
    assert page.locator("[data-testid=preview] tbody tr").count() == 300
    assert page.locator("[data-testid=profile] tbody tr").count() == 5
    page.click("[data-testid=fullscreen-button]")
    assert page.locator("#preview-dialog[open]").is_visible()
    page.keyboard.press("Escape")

    # The auto-analysis (run by the real worker) streams in: overview text and rendered charts.
    page.wait_for_selector("[data-testid=assistant-message].finished", timeout=60000)
    page.wait_for_function("document.querySelectorAll('[data-testid=plot][data-rendered=\"1\"]').length >= 3")
    assert "has 300 rows and 5 columns" in page.inner_text("[data-testid=chat-log]")
    assert page.locator("[data-testid=plot] svg.marks").count() >= 3

    page.fill("[data-testid=chat-input]", "sum of qty by symbol")
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=user-message]:has-text('sum of qty by symbol')")
    page.wait_for_function("document.querySelectorAll('[data-testid=assistant-message].finished').length >= 2",
                           timeout=60000)
    answer = page.locator("[data-testid=assistant-message]").nth(1)
    assert answer.locator("[data-testid=query-result] tbody tr").count() == 4
    answer.locator("[data-testid=plot][data-rendered='1'] svg.marks").wait_for()
    assert "The total of qty by symbol" in answer.inner_text()
    assert answer.locator("[data-testid=download-csv]").get_attribute("href").endswith(".csv")
    page.wait_for_function("document.getElementById('session-title').textContent.includes('Sum of qty by symbol')")
    assert page.locator("[data-testid=chat-send]").is_enabled()

    # Reload: file info, preview and every message with its charts come back.
    page.reload()
    page.wait_for_function("document.querySelectorAll('[data-testid=plot][data-rendered=\"1\"]').length >= 4")
    assert page.locator("[data-testid=user-message]").count() == 1
    assert page.locator("[data-testid=query-result]").count() >= 1
    assert page.locator("[data-testid=preview] tbody tr").count() == 300

    page.goto(live_platform.url + "/analyzer/")
    history = page.inner_text("[data-testid=history]")
    assert "Sum of qty by symbol" in history and "trades.csv" in history
    assert "failed" in history and "header.csv" in history
