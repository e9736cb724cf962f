"""ETL end to end: a real ASGI server, a real worker, a real HTTP POS host on 127.0.0.1, a real browser."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import timedelta

import pytest
import websockets
from django.utils import timezone

from core.models import JobStatus
from tests.support import api_token, token_header, token_subprotocols, wait_until
from etl.demo_files import day_files, write_day
from etl.models import Branch, FetchJob, FileSource, Record
from etl.demo_host import PosHostServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def pos_host(tmp_path):
    server = PosHostServer(tmp_path / "pos").start()
    server.root.mkdir(parents=True, exist_ok=True)
    yield server
    server.stop()


def make_branch(pos_host, *, code: str, opened_on) -> Branch:
    source = FileSource.objects.create(name=f"host {code}", kind=FileSource.Kind.HTTP,
                                       list_url_template=pos_host.list_template,
                                       download_url_template=pos_host.download_template)
    return Branch.objects.create(code=code, name=f"Branch {code}", is_new_branch=code.startswith("N"),
                                 source=source, opened_on=opened_on)


def publish(pos_host, branch: Branch, days, lines: int = 40) -> None:
    for day in days:
        for pos in (1, 2):
            files = day_files(rng=random.Random(f"{branch.code}{pos}{day}"), pos=pos, work_date=day, lines=lines,
                              old=not branch.is_new_branch, truncated_chance=0, garbled_chance=0)
            write_day(pos_host.root, branch=branch.code, pos=pos, work_date=day, files=files)


async def _watch(url: str, token: str, timeout: float = 60) -> list[dict]:
    seen = []
    async with websockets.connect(url, open_timeout=10, subprotocols=token_subprotocols(token)) as ws:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            seen.append(message)
            if message["type"] == "end":
                break
    return seen


def test_fetch_through_api_runs_in_worker_and_streams_rows(live_platform, user, pos_host):
    day = timezone.localdate() - timedelta(days=2)
    branch = make_branch(pos_host, code="E01", opened_on=day)
    publish(pos_host, branch, [day], lines=60)
    token = api_token(user)
    import httpx

    response = httpx.post(f"{live_platform.url}/api/etl/jobs/fetch/", headers=token_header(token),
                          json={"branch": "E01", "date": day.isoformat()}, timeout=20)
    assert response.status_code == 202, response.text
    ids = [job["id"] for job in response.json()["jobs"]]
    seen = asyncio.run(_watch(f"{live_platform.ws_url}/ws/etl/jobs/?ids={','.join(map(str, ids))}", token))
    final = {m["job"]["id"]: m["job"] for m in seen if m["type"] == "job"}
    assert {job["status"] for job in final.values()} == {"succeeded"}, live_platform.output()
    statuses = [m["job"]["status"] for m in seen if m["type"] == "job"]
    assert "running" in statuses or "queued" in statuses
    assert Record.objects.filter(branch=branch, work_date=day).count() == 120


def test_browser_queues_missing_cells_and_watches_them_turn_done(live_platform, user, pos_host, browser_page, login_page):
    end = timezone.localdate() - timedelta(days=3)
    start = end - timedelta(days=1)
    branch = make_branch(pos_host, code="E02", opened_on=start)
    publish(pos_host, branch, [start, end])
    page = login_page(browser_page, live_platform, user)
    page.goto(f"{live_platform.url}/etl/missing/?start={start}&end={end}&branch=E02")
    cells = page.locator("td.cell-missing")
    assert cells.count() == 4
    page.click("[data-testid=select-missing]")
    assert page.locator("[data-selected-count]").inner_text() == "4"
    page.click("[data-testid=queue-selected]")
    confirm = page.locator("[data-testid=confirm-box]")
    confirm.wait_for()
    text = confirm.inner_text()
    assert "Queue 4 fetch jobs?" in text
    assert f"E02 · POS 1 · {start}" in text and f"E02 · POS 2 · {end}" in text
    assert FetchJob.objects.count() == 0  # nothing runs before confirmation
    page.click("[data-testid=confirm-queue]")
    page.locator("[data-testid=queued-box]").wait_for()
    # Live over the websocket: the cells turn done without a reload.
    page.wait_for_function("document.querySelectorAll('td.cell-done').length === 4", timeout=60000)
    assert page.locator("td.cell-missing").count() == 0
    assert FetchJob.objects.filter(status=JobStatus.SUCCEEDED).count() == 4
    page.reload()
    assert page.locator("td.cell-done").count() == 4


def test_jobs_table_rows_update_live(live_platform, user, pos_host, browser_page, login_page):
    day = timezone.localdate() - timedelta(days=4)
    branch = make_branch(pos_host, code="E03", opened_on=day)
    publish(pos_host, branch, [day])
    from etl import services

    page = login_page(browser_page, live_platform, user)
    pos_host.faults["delay"] = 1.0  # slow host (7 requests): the row is seen queued/running first
    job, _ = services.fetch_job_request(user=user, branch=branch, pos=1, work_date=day)
    page.goto(f"{live_platform.url}/etl/jobs/?branch=E03")
    row = page.locator(f"tr[data-job-id='{job.pk}']")
    assert row.get_attribute("data-status") in ("queued", "running")
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job-id='{job.pk}']\").dataset.status === 'succeeded'", timeout=60000)
    assert row.locator("[data-field=records]").inner_text() == "40"
    wait_until(lambda: FetchJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, timeout=5)


def test_job_detail_socket_streams_a_running_job(live_platform, user, other_user, pos_host):
    """A real worker runs the job; another team member watches `/ws/etl/jobs/<id>/` live."""
    day = timezone.localdate() - timedelta(days=5)
    branch = make_branch(pos_host, code="E04", opened_on=day)
    publish(pos_host, branch, [day], lines=50)
    from etl import services

    token = api_token(other_user)
    pos_host.faults["delay"] = 0.5  # slow host: events arrive one by one while the job runs
    job, _ = services.fetch_job_request(user=user, branch=branch, pos=1, work_date=day)
    seen = asyncio.run(_watch(f"{live_platform.ws_url}/ws/etl/jobs/{job.pk}/?after=0", token))
    assert seen[-1]["type"] == "end", live_platform.output()
    events = [m for m in seen if m["type"] == "event"]
    statuses = [m["job"]["status"] for m in seen if m["type"] == "status"]
    assert "running" in statuses and statuses[-1] == "succeeded", live_platform.output()
    kinds = [m["kind"] for m in events]
    assert kinds[0] == "step" and kinds[-1] == "result" and "downloaded" in kinds and "parsed" in kinds
    assert [m["seq"] for m in events] == list(range(1, len(events) + 1))
    # Live, not a replay at the end: events were received before the final status.
    first_event = seen.index(events[0])
    final_status = max(i for i, m in enumerate(seen) if m["type"] == "status")
    assert first_event < final_status
    assert events[-1]["data"]["records_written"] == 50


def test_job_detail_page_updates_live_in_the_browser(live_platform, user, pos_host, browser_page, login_page):
    day = timezone.localdate() - timedelta(days=6)
    branch = make_branch(pos_host, code="E05", opened_on=day)
    publish(pos_host, branch, [day])
    from etl import services

    page = login_page(browser_page, live_platform, user)
    pos_host.faults["delay"] = 0.5
    job, _ = services.fetch_job_request(user=user, branch=branch, pos=2, work_date=day)
    page.goto(f"{live_platform.url}/etl/jobs/{job.pk}/")
    assert page.locator("#job-live").get_attribute("data-finished") == "0"
    page.wait_for_function("document.querySelector('#job-live').dataset.ended === '1'", timeout=60000)
    assert page.locator("[data-testid=job-status]").inner_text() == "succeeded"
    events = page.locator("[data-testid=job-events] li")
    assert events.count() >= 8
    assert "Result: succeeded" in events.last.inner_text()
    # the details were fetched once at the end: stored files and the force button (owner)
    page.locator("#job-details >> text=Force refetch").wait_for(timeout=10000)
    assert page.locator("#job-details a[href*='/files/'][href$='/download/']").count() == 2
    assert page.locator("#job-details a[href*='/files/']:not([href$='/download/'])").count() == 2  # their pages
