"""A user uploads a script in the browser, runs it, watches lines arrive live, and stops it."""

import pytest

from core.models import JobStatus
from tests.support import wait_until
from scripts_runner import services
from scripts_runner.models import EndReason, ScriptRun

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _sandbox_available():
    from scripts_runner.tests.conftest import require_sandbox

    require_sandbox()

CODE = b"""import sys, time
print('starting', flush=True)
print('a warning', file=sys.stderr, flush=True)
i = 0
while True:
    print(f'tick {i}', flush=True)
    i += 1
    time.sleep(0.2)
"""


def test_upload_run_watch_and_stop(live_platform, browser_page, login_page, user, tmp_path):
    services.script_access_set(user=user, run=True)
    page = browser_page
    login_page(page, live_platform, user)
    page.goto(live_platform.url + "/scripts/")

    # A syntax error is reported with its line and column.
    bad = tmp_path / "broken.py"
    bad.write_bytes(b"print('ok')\nfor x in\n")
    page.set_input_files("[data-testid=upload-form] input[type=file]", str(bad))
    page.click("[data-testid=upload-form] button[type=submit]")
    page.wait_for_selector("[data-testid=upload-error]")
    assert "Syntax error at line 2" in page.inner_text("[data-testid=upload-error]")

    script = tmp_path / "ticker.py"
    script.write_bytes(CODE)
    page.set_input_files("[data-testid=upload-form] input[type=file]", str(script))
    page.click("[data-testid=upload-form] button[type=submit]")
    page.wait_for_selector("text=Uploaded ticker.py")
    assert "tick" in page.inner_text(".code-view")

    page.click("[data-testid=run-button]")
    page.wait_for_url("**/scripts/runs/*/")
    log = page.locator("[data-testid=log]")
    page.wait_for_selector("[data-testid=log] .line.stdout:has-text('tick 3')", timeout=30000)
    assert page.locator("[data-testid=log] .line.stderr").first.inner_text().strip() == "a warning"
    assert "live" in page.inner_text("[data-testid=live-state]")

    # Reload: the lines seen so far are rendered and the stream resumes without duplicates.
    page.reload()
    page.wait_for_selector("[data-testid=log] .line.stdout:has-text('tick 6')", timeout=30000)
    texts = [t.strip() for t in log.locator(".line.stdout").all_inner_texts()]
    ticks = [t for t in texts if t.startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(len(ticks))]

    page.click("[data-testid=stop-button]")
    page.wait_for_selector("[data-testid=run-status]:has-text('cancelled')", timeout=15000)
    run = ScriptRun.objects.get()
    wait_until(lambda: ScriptRun.objects.get(pk=run.pk).is_finished, timeout=10)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.end_reason == EndReason.CANCELLED
    page.wait_for_selector(f"[data-testid=end-reason]:has-text('Cancelled by {user.username}')", timeout=10000)
    assert page.inner_text("[data-testid=live-state]").strip() == "finished"
