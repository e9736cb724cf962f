"""A job runs in a real worker process and a websocket client on a real ASGI server sees its progress."""

import asyncio
import json
import statistics
import time
from datetime import timedelta

import pytest
import websockets
from django.utils import timezone

from core import recovery, services
from core.models import JobStatus, WorkerCheck
from tests.support import api_token, token_header, wait_until

pytestmark = pytest.mark.e2e


async def _collect(url: str, token: str, until_end: float = 30.0) -> list[tuple[float, dict]]:
    received = []
    async with websockets.connect(url, open_timeout=10, additional_headers=token_header(token)) as ws:
        deadline = time.monotonic() + until_end
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            received.append((time.time(), message))
            if message["type"] == "end":
                break
    return received


def test_worker_progress_reaches_websocket_client(live_platform, user, report):
    token = api_token(user)
    job = WorkerCheck.objects.create(owner=user, steps=20, interval_ms=50)
    url = f"{live_platform.ws_url}/ws/core/worker-checks/{job.pk}/"

    async def run():
        collector = asyncio.ensure_future(_collect(url, token))
        await asyncio.sleep(0.3)  # subscribed before the work starts
        await asyncio.to_thread(services.job_enqueue, job=job)
        return await collector

    received = asyncio.run(run())
    events = [m for _, m in received if m["type"] == "event"]
    assert [e["data"]["step"] for e in events] == list(range(1, 21)), live_platform.output()
    assert [e["seq"] for e in events] == list(range(1, 21))
    statuses = [m["job"]["status"] for _, m in received if m["type"] == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses
    assert received[-1][1]["type"] == "end"
    latencies = sorted((t - m["data"]["written_at"]) * 1000 for t, m in received if m["type"] == "event")
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    from django.conf import settings

    mode = "redis" if settings.REDIS_URL else "embedded"
    report(f"worker→websocket latency ({mode}, {len(latencies)} events): "
           f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_worker_killed_mid_job_is_marked_lost(live_platform, user):
    job = WorkerCheck.objects.create(owner=user, steps=1000, interval_ms=100)
    services.job_enqueue(job=job)
    wait_until(lambda: WorkerCheck.objects.get(pk=job.pk).status == JobStatus.RUNNING, timeout=30,
               message="job running")
    live_platform.stop_worker()
    try:
        # The heartbeat stops with the worker; once stale, the recovery pass fails the job.
        wait_until(lambda: WorkerCheck.objects.get(pk=job.pk).heartbeat_at is not None, timeout=5)
        # Nothing writes it any more; its age is set rather than waited for.
        WorkerCheck.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
        counts = recovery.jobs_recover(stale_seconds=60)
        job.refresh_from_db()
        assert counts["worker_lost"] == 1
        assert job.status == JobStatus.FAILED and job.error == "worker lost"
    finally:
        live_platform.start_worker()


def test_health_reports_worker_heartbeat(live_platform, admin_user, auth_client):
    client = auth_client(admin_user)
    body = wait_until(lambda: (r := client.get("/api/health/").json())["worker"]["ok"] and r, timeout=30,
                      message="worker heartbeat")
    assert body["database"]["ok"] and body["channel_layer"]["ok"]
