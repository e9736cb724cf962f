"""The fetch job page over its websocket `/ws/etl/jobs/<id>/?after=SEQ`: live status and events, resume, access."""

from datetime import date

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from core import services as core_services
from core.models import JobStatus
from tests.support import api_token, token_ws_headers
from etl import services
from etl.models import FetchJob

from .conftest import write_demo_day

DAY = date(2025, 3, 4)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("etl_fast")]


async def _connect(path: str, user):
    from config.asgi import application

    headers = token_ws_headers(await sync_to_async(api_token)(user)) if user is not None else []
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _until(communicator, predicate, limit: int = 50) -> list[dict]:
    seen = []
    for _ in range(limit):
        message = await communicator.receive_json_from(timeout=5)
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"not seen in {limit} messages: {seen}")


def test_detail_socket_streams_a_running_job_live(user, other_user, old_branch):
    job = FetchJob.objects.create(owner=user, branch=old_branch, pos=1, work_date=DAY)

    async def scenario():
        # ETL jobs are the team's (etl/README.md): another signed-in, non-staff user may watch.
        ws, connected, _ = await _connect(f"/ws/etl/jobs/{job.pk}/", other_user)
        assert connected
        first = await ws.receive_json_from(timeout=5)
        assert first["type"] == "status" and first["job"]["status"] == "queued"
        assert first["job"]["branch"] == "B01" and first["job"]["work_date"] == "2025-03-04"

        await sync_to_async(core_services.job_start)(job=job)
        assert (await _until(ws, lambda m: m["type"] == "status"))[-1]["job"]["status"] == "running"
        await sync_to_async(core_services.job_event_add)(
            job=job, kind="downloaded", data={"attempt": 1, "name": "rd5000_a.csv", "filetype": "rd5000", "size": 10,
                                              "rows": 3})
        event = (await _until(ws, lambda m: m["type"] == "event"))[-1]
        assert event["seq"] == 1 and event["kind"] == "downloaded" and event["data"]["name"] == "rd5000_a.csv"
        await sync_to_async(core_services.job_progress)(job=job, fraction=0.5, message="Parsing")
        status = (await _until(ws, lambda m: m["type"] == "status" and m["job"]["progress"] == 0.5))[-1]["job"]
        assert status["message"] == "Parsing" and status["status"] == "running"

        # A non-owner cannot cancel over the socket: an error frame, the job keeps running.
        await ws.send_json_to({"type": "cancel"})
        error = (await _until(ws, lambda m: m["type"] == "error"))[-1]
        assert "owner" in error["error"]
        assert not (await sync_to_async(FetchJob.objects.get)(pk=job.pk)).cancel_requested

        await sync_to_async(core_services.job_event_add)(job=job, kind="result",
                                                         data={"attempt": 1, "status": "succeeded", "message": "3"})
        await sync_to_async(core_services.job_succeed)(job=job, message="3 records", records_written=3,
                                                       counts={"parsed": 3})
        tail = await _until(ws, lambda m: m["type"] == "end")
        assert [m["seq"] for m in tail if m["type"] == "event"] == [2]
        final = [m for m in tail if m["type"] == "status"][-1]["job"]
        assert final["status"] == "succeeded" and final["records_written"] == 3 and final["counts"] == {"parsed": 3}
        await ws.disconnect()

    async_to_sync(scenario)()


def test_detail_socket_replays_a_real_run_and_resumes_after_seq(user, other_user, old_branch, pos_root, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=30)
    job, _ = services.fetch_job_request(user=user, branch=old_branch, pos=1, work_date=DAY)
    task_queue.run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error

    async def scenario():
        ws, connected, _ = await _connect(f"/ws/etl/jobs/{job.pk}/?after=0", other_user)
        assert connected
        messages = await _until(ws, lambda m: m["type"] == "end", limit=100)
        await ws.disconnect()
        events = [m for m in messages if m["type"] == "event"]
        kinds = [m["kind"] for m in events]
        assert [m["seq"] for m in events] == list(range(1, len(events) + 1))
        assert kinds[:2] == ["step", "listed"] and kinds[-1] == "result"
        assert kinds.count("downloaded") == job.counts["downloaded"] > 0
        assert {"chosen", "parsed"} <= set(kinds)
        assert [e["data"]["step"] for e in events if e["kind"] == "step"] == ["list", "download", "store", "parse", "load"]
        assert events[-1]["data"] == {"attempt": 1, "status": "succeeded", "message": job.message,
                                      "records_written": 30, "records_before": 0, "counts": job.counts}
        status = [m for m in messages if m["type"] == "status"][-1]["job"]
        assert status["status"] == "succeeded" and status["records_written"] == 30

        # Reconnect after the "chosen" event: only what came after it.
        chosen_seq = next(e["seq"] for e in events if e["kind"] == "chosen")
        ws, connected, _ = await _connect(f"/ws/etl/jobs/{job.pk}/?after={chosen_seq}", user)
        assert connected
        resumed = await _until(ws, lambda m: m["type"] == "end", limit=100)
        await ws.disconnect()
        assert [m["seq"] for m in resumed if m["type"] == "event"] == [e["seq"] for e in events if e["seq"] > chosen_seq]

    async_to_sync(scenario)()


def test_detail_socket_access(user, other_user, old_branch):
    job = FetchJob.objects.create(owner=user, branch=old_branch, pos=1, work_date=DAY)

    async def scenario():
        _, connected, code = await _connect(f"/ws/etl/jobs/{job.pk}/", None)
        assert not connected and code == 4401  # signed-out: refused
        _, connected, code = await _connect(f"/ws/etl/jobs/{job.pk + 1000}/", other_user)
        assert not connected and code == 4404
        # The owner may cancel over the socket.
        ws, connected, _ = await _connect(f"/ws/etl/jobs/{job.pk}/", user)
        assert connected
        await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"type": "cancel"})
        final = await _until(ws, lambda m: m["type"] == "end")
        assert [m for m in final if m["type"] == "status"][-1]["job"]["status"] == "cancelled"
        await ws.disconnect()

    async_to_sync(scenario)()


def test_detail_page_uses_the_socket_not_polling(client, user, other_user, old_branch, pos_root, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=20)
    job, _ = services.fetch_job_request(user=user, branch=old_branch, pos=1, work_date=DAY)
    client.force_login(other_user)
    page = client.get(reverse("etl:fetchjob_detail", args=[job.pk])).content.decode()
    assert f'data-ws="/ws/etl/jobs/{job.pk}/"' in page and 'data-after="0"' in page
    assert "hx-trigger" not in page and "every 1s" not in page and "etl/job_detail.js" in page
    task_queue.run()
    job.refresh_from_db()
    page = client.get(reverse("etl:fetchjob_detail", args=[job.pk])).content.decode()
    assert f'data-after="{job.event_seq}"' in page and 'data-finished="1"' in page
    assert "Result: succeeded" in page and "Downloaded rd5000_" in page
    details = client.get(reverse("etl:fetchjob_detail", args=[job.pk]) + "?fragment=details").content.decode()
    assert details.lstrip().startswith('<div id="job-details">') and "Stored files" in details
    assert "Force refetch" not in details  # not the owner
