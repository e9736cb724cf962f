"""Core jobs: lifecycle, recovery pass, the websocket stream and its ownership check."""

import os
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from config.asgi import application
from core import jobkit, recovery, services
from core.models import JobEvent, JobStatus, WorkerCheck
from tests.support import api_token, token_ws_headers


def make_check(owner, **kw):
    job = WorkerCheck(owner=owner, steps=kw.pop("steps", 3), interval_ms=kw.pop("interval_ms", 1), **kw)
    job.save()
    return job


def test_job_runs_inline_with_events(user, sync_jobs):
    job = make_check(user)
    services.job_enqueue(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED  # queued on commit, not before
    sync_jobs.commit()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.progress == 1.0
    assert list(JobEvent.objects.filter(job_id=job.pk, job_kind="core.workercheck").values_list("seq", flat=True)) == [1, 2, 3]


def test_cancel_queued_job_never_runs(user, sync_jobs):
    job = make_check(user)
    services.job_cancel(job=job, by=user)
    assert job.status == JobStatus.CANCELLED
    from core.tasks import worker_check_run

    worker_check_run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.started_at is None


def test_failing_body_records_error(user):
    job = make_check(user)

    def boom(job):
        raise ValueError("bad input row 7")

    jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=boom)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "bad input row 7" in job.error


def test_failure_shown_to_users_has_no_traceback_or_host_paths(user, settings):
    job = make_check(user)
    missing = os.path.join(settings.MEDIA_ROOT, "exports", "gone.csv")

    def boom(job):
        open(missing)

    jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=boom)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("FileNotFoundError:") and "gone.csv" in job.error, job.error
    assert "Traceback" not in job.error and settings.MEDIA_ROOT not in job.error, job.error
    assert str(settings.BASE_DIR) not in job.error, job.error


def test_cancel_requested_while_running(user):
    job = make_check(user)

    def body(job):
        services.job_cancel(job=job, by=user)
        services.job_raise_if_cancelled(job=job)
        raise AssertionError("not reached")

    jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=body)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.cancelled_by == user


def test_job_started_twice_runs_once(user):
    job = make_check(user)
    assert services.job_start(job=job)
    again = WorkerCheck.objects.get(pk=job.pk)
    assert not services.job_start(job=again)


def test_recovery_marks_stale_running_job_worker_lost(user):
    stale = make_check(user)
    fresh = make_check(user)
    for job in (stale, fresh):
        services.job_start(job=job)
    WorkerCheck.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    counts = recovery.jobs_recover(stale_seconds=60)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert counts["worker_lost"] == 1
    assert stale.status == JobStatus.FAILED and stale.error == "worker lost"
    assert fresh.status == JobStatus.RUNNING


def test_recovery_signals_reach_the_receivers_apps_connect(user):
    """Apps clean up after a lost job through core's signals, connected in their AppConfig.ready()."""
    from analyzer.models import Answer, Processing
    from core.signals import job_worker_lost, jobs_recovered
    from scripts_runner.models import ScriptRun
    from trades.models import Export

    for model in (Export, Answer, Processing, ScriptRun):
        assert job_worker_lost.has_listeners(model), model
    assert not job_worker_lost.has_listeners(WorkerCheck)
    lost, passes = [], []
    job_worker_lost.connect(lambda sender, job, **kw: lost.append((sender, job.pk, job.status)), sender=WorkerCheck,
                            weak=False, dispatch_uid="test_lost")
    jobs_recovered.connect(lambda sender, **kw: passes.append(sender), weak=False, dispatch_uid="test_pass")
    try:
        stale = make_check(user)
        services.job_start(job=stale)
        WorkerCheck.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
        recovery.jobs_recover(stale_seconds=60)
        recovery.jobs_recover(stale_seconds=60)
    finally:
        job_worker_lost.disconnect(sender=WorkerCheck, dispatch_uid="test_lost")
        jobs_recovered.disconnect(dispatch_uid="test_pass")
    assert lost == [(WorkerCheck, stale.pk, JobStatus.FAILED)]  # once, with the job already failed
    assert passes == [None, None]


def test_recovery_requeues_queued_job_whose_task_vanished(user, monkeypatch, commits):
    job = make_check(user)
    WorkerCheck.objects.filter(pk=job.pk).update(task_id="vanished", created_at=timezone.now() - timedelta(minutes=5))
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, pk, **kw: sent.append((func, pk)) or "new-task")
    counts = recovery.jobs_recover(stale_seconds=60)
    assert sent == []  # queued on commit, not before
    commits.commit()
    assert counts["requeued"] == 1
    assert sent == [("core.tasks.worker_check_run", job.pk)]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.task_id == "new-task"


def test_recovery_leaves_queued_job_whose_task_waits(user):
    from django_q.tasks import async_task

    job = make_check(user)
    task_id = async_task("core.tasks.worker_check_run", job.pk)
    WorkerCheck.objects.filter(pk=job.pk).update(task_id=task_id, created_at=timezone.now() - timedelta(minutes=5))
    assert recovery.jobs_recover(stale_seconds=60)["requeued"] == 0
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


# --- websocket ----------------------------------------------------------------------------


async def _connect(path, *, user=None, token=None):
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if token:
        headers += token_ws_headers(token)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    if user is not None:
        # Session auth the way a logged-in browser has it.
        from django.test import Client

        client = Client()
        await sync_to_async(client.force_login)(user)
        cookie = client.cookies["sessionid"].value
        communicator = WebsocketCommunicator(
            application, path, headers=headers + [(b"cookie", f"sessionid={cookie}".encode())]
        )
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ws_owner_receives_status_and_events(make_user):
    owner = await sync_to_async(make_user)("owner")
    job = await sync_to_async(make_check)(owner)
    await sync_to_async(services.job_event_add)(job=job, kind="tick", data={"step": 1})
    comm, connected, _ = await _connect(f"/ws/core/worker-checks/{job.pk}/", user=owner)
    assert connected
    first = await comm.receive_json_from(timeout=5)
    assert first == {"type": "event", "seq": 1, "kind": "tick", "data": {"step": 1}}
    status = await comm.receive_json_from(timeout=5)
    assert status["type"] == "status" and status["job"]["status"] == "queued"
    await sync_to_async(services.job_event_add)(job=job, kind="tick", data={"step": 2})
    second = await comm.receive_json_from(timeout=5)
    assert second["seq"] == 2
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ws_resume_after_seq_with_token(make_user):
    owner = await sync_to_async(make_user)("owner")
    token = await sync_to_async(api_token)(owner)
    job = await sync_to_async(make_check)(owner)
    for step in range(3):
        await sync_to_async(services.job_event_add)(job=job, kind="tick", data={"step": step})
    comm, connected, _ = await _connect(f"/ws/core/worker-checks/{job.pk}/", token=token)
    assert connected
    await comm.disconnect()
    comm = WebsocketCommunicator(
        application, f"/ws/core/worker-checks/{job.pk}/?after=2", headers=token_ws_headers(token)
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    message = await comm.receive_json_from(timeout=5)
    assert message["seq"] == 3
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ws_other_user_is_refused(make_user):
    owner = await sync_to_async(make_user)("owner")
    intruder = await sync_to_async(make_user)("intruder")
    job = await sync_to_async(make_check)(owner)
    comm, connected, code = await _connect(f"/ws/core/worker-checks/{job.pk}/", user=intruder)
    assert not connected and code == 4404


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ws_staff_may_watch_any_job(make_user):
    owner = await sync_to_async(make_user)("owner")
    staff = await sync_to_async(make_user)("staffer", is_admin=True)
    job = await sync_to_async(make_check)(owner)
    comm, connected, _ = await _connect(f"/ws/core/worker-checks/{job.pk}/", user=staff)
    assert connected
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ws_anonymous_and_bad_token_refused(make_user):
    owner = await sync_to_async(make_user)("owner")
    job = await sync_to_async(make_check)(owner)
    _, connected, code = await _connect(f"/ws/core/worker-checks/{job.pk}/")
    assert not connected and code == 4401
    _, connected, code = await _connect(f"/ws/core/worker-checks/{job.pk}/", token="not-a-token")
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_ws_foreign_origin_refused(make_user):
    owner = await sync_to_async(make_user)("owner")
    job = await sync_to_async(make_check)(owner)
    comm = WebsocketCommunicator(
        application, f"/ws/core/worker-checks/{job.pk}/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await comm.connect(timeout=5)
    assert not connected
