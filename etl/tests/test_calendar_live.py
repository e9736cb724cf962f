"""Missing-data calendar against a hand-made expectation; live job rows over the websocket; query counts."""

from datetime import date, timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import services as core_services
from core.models import JobStatus
from tests.support import api_token, token_ws_headers
from etl import selectors
from etl.models import Branch, FetchJob

pytestmark = [pytest.mark.django_db]


def test_calendar_matches_hand_made_expectation(user, http_source, monkeypatch):
    today = date(2025, 3, 10)  # a Monday
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: today)
    old = Branch.objects.create(code="A", name="A", source=http_source, closed_weekdays=[6],  # closed on Sundays
                                closed_dates=["2025-03-05"])
    new = Branch.objects.create(code="Z", name="Z", source=http_source, is_new_branch=True, opened_on=date(2025, 3, 8))
    make = lambda branch, pos, day, status: FetchJob.objects.create(  # noqa: E731
        owner=user, branch=branch, pos=pos, work_date=day, status=status)
    make(old, 1, date(2025, 3, 4), JobStatus.SUCCEEDED)
    make(old, 1, date(2025, 3, 6), JobStatus.FAILED)
    make(old, 2, date(2025, 3, 6), JobStatus.RUNNING)
    make(old, 2, date(2025, 3, 7), JobStatus.QUEUED)
    make(old, 2, date(2025, 3, 8), JobStatus.CANCELLED)
    make(new, 1, date(2025, 3, 9), JobStatus.SUCCEEDED)
    with CaptureQueriesContext(connection) as queries:
        calendar = selectors.missing_calendar(start=date(2025, 3, 3), end=date(2025, 3, 11))
    assert len(queries) == 2  # branches + one query for every job of the range
    grid = {(row["branch"].code, row["pos"]): "".join(c["state"][0].upper() for c in row["cells"]) for row in calendar["rows"]}
    # days: Mon 3 .. Tue 11; D done, M missing, F failed, R running, N not expected
    assert grid == {
        ("A", 1): "MDNFMMNMN",  # 5th closed date, 9th Sunday, 11th future
        ("A", 2): "MMNRRMNMN",  # cancelled on the 8th = missing again
        ("Z", 1): "NNNNNMDMN",  # opened on the 8th
        ("Z", 2): "NNNNNMMMN",
    }
    assert calendar["totals"] == {"done": 2, "missing": 13, "failed": 1, "running": 2, "not_expected": 18}
    cells = selectors.missing_cells(calendar=calendar)
    assert (old.pk, 1, date(2025, 3, 6)) in cells and (old.pk, 1, date(2025, 3, 5)) not in cells


def test_jobs_page_query_count_does_not_grow(client, user, http_source):
    branch = Branch.objects.create(code="Q", name="Q", source=http_source)
    for offset in range(3):
        FetchJob.objects.create(owner=user, branch=branch, pos=1, work_date=date(2025, 1, 1) + timedelta(days=offset))
    client.force_login(user)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("etl:job_list")).status_code == 200
    for offset in range(3, 40):
        FetchJob.objects.create(owner=user, branch=branch, pos=2, work_date=date(2025, 1, 1) + timedelta(days=offset))
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("etl:job_list")).status_code == 200
    assert len(many) == len(few)


@pytest.mark.django_db(transaction=True)
def test_job_rows_stream_live_over_websocket(user, other_user, http_source):
    from config.asgi import application

    branch = Branch.objects.create(code="W", name="W", source=http_source)
    job = FetchJob.objects.create(owner=user, branch=branch, pos=1, work_date=date(2025, 1, 2))

    async def scenario():
        anonymous = WebsocketCommunicator(application, "/ws/etl/jobs/?ids=1")
        connected, code = await anonymous.connect()
        assert not connected and code == 4401
        await anonymous.disconnect()

        # ETL jobs are visible to every signed-in user
        headers = token_ws_headers(await sync_to_async(api_token)(other_user))
        communicator = WebsocketCommunicator(application, f"/ws/etl/jobs/?ids={job.pk}", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        assert first["type"] == "job" and first["job"]["status"] == "queued" and first["job"]["id"] == job.pk
        await sync_to_async(core_services.job_start)(job=job)
        second = await communicator.receive_json_from(timeout=5)
        assert second["job"]["status"] == "running"
        await sync_to_async(core_services.job_progress)(job=job, fraction=0.5, message="Parsing")
        third = await communicator.receive_json_from(timeout=5)
        assert third["job"]["progress"] == 0.5 and third["job"]["message"] == "Parsing"
        await sync_to_async(core_services.job_succeed)(job=job, message="done", records_written=7)
        fourth = await communicator.receive_json_from(timeout=5)
        assert fourth["job"]["status"] == "succeeded" and fourth["job"]["records_written"] == 7
        assert fourth["job"]["work_date"] == "2025-01-02" and fourth["job"]["branch_id"] == branch.pk
        assert (await communicator.receive_json_from(timeout=5))["type"] == "end"
        await communicator.disconnect()

    async_to_sync(scenario)()
