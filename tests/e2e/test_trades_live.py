"""Trade exports through a real server and a real worker: API flow, websocket progress,
`curl -C -` and a Range request resuming an interrupted download, cancelling a running export."""

import asyncio
import hashlib
import http.client
import json
import shutil
import subprocess
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import requests
import websockets

from tests.support import api_token, token_header
from trades.loading import trades_generate

pytestmark = pytest.mark.e2e


def test_api_export_progress_and_curl_resume(live_platform, user, tmp_path):
    trades_generate(tickers=4, days=3, rows=40_000, seed=5)
    token = api_token(user)
    headers = {"Authorization": f"Token {token}"}
    body = {"exchanges": [10, 12], "operations": [{"expression": "PRICE*SIZE"}], "sortby": "time_asc",
            "format": "csv"}
    started = requests.post(f"{live_platform.url}/api/trades/exports/", json=body, headers=headers, timeout=10)
    assert started.status_code == 202, started.text
    pk = started.json()["id"]

    async def follow():
        url = f"{live_platform.ws_url}/ws/trades/exports/{pk}/"
        statuses = []
        async with websockets.connect(url, open_timeout=10, additional_headers=token_header(token)) as ws:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                if message["type"] == "status":
                    statuses.append(message["job"])
                if message["type"] == "end":
                    return statuses

    statuses = asyncio.run(follow())
    final = statuses[-1]
    assert final["status"] == "succeeded", live_platform.output()
    assert final["rows_written"] > 1000 and final["download_url"]

    again = requests.post(f"{live_platform.url}/api/trades/exports/", json=body, headers=headers, timeout=10)
    assert again.status_code == 200 and again.json()["outcome"] == "existing" and again.json()["id"] == pk
    detail = requests.get(f"{live_platform.url}/api/trades/exports/{pk}/", headers=headers, timeout=10).json()

    url = f"{live_platform.url}/api/trades/exports/{pk}/download/"
    full = requests.get(url, headers=headers, timeout=30).content
    assert hashlib.sha256(full).hexdigest() == detail["sha256"]
    # An interrupted download resumed with a Range request (what browsers and download managers send).
    part = full[: len(full) // 3]
    parsed = urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("GET", parsed.path, headers={"Authorization": f"Token {token}", "Range": f"bytes={len(part)}-",
                                              "If-Range": f'"{detail["sha256"]}"'})
    resumed = conn.getresponse()
    assert resumed.status == 206, resumed.status
    assert resumed.getheader("Content-Range") == f"bytes {len(part)}-{len(full) - 1}/{len(full)}"
    assert hashlib.sha256(part + resumed.read()).hexdigest() == detail["sha256"]
    conn.close()

    # `curl -C -` resuming a cut download (the documented way to fetch multi-GB exports).
    assert shutil.which("curl"), "curl is required by this test (apt-get install curl)"
    out = tmp_path / "export.csv"
    out.write_bytes(full[: len(full) // 2])  # an interrupted download
    subprocess.run(["curl", "-sS", "-f", "-C", "-", "-o", str(out), "-H", f"Authorization: Token {token}", url],
                   check=True, timeout=60)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == detail["sha256"]

    other = api_token(type(user).objects.create(username="mallory"))
    denied = requests.get(url, headers={"Authorization": f"Token {other}"}, timeout=10)
    assert denied.status_code == 404


def test_cancel_a_running_export_through_the_api(live_platform, user, tmp_path):
    """Deterministic: the worker runs with TRADES_EXPORT_TEST_HOLD_FILE, so the export, once running,
    waits before writing while the file exists (checking cancellation); the test cancels it then."""
    from trades.services import TEST_HOLD_MESSAGE

    trades_generate(tickers=4, days=3, rows=20_000, seed=9)
    hold = tmp_path / "hold"
    hold.touch()
    live_platform.stop_worker()
    live_platform.env["TRADES_EXPORT_TEST_HOLD_FILE"] = str(hold)
    live_platform.start_worker()
    try:
        token = api_token(user)
        headers = {"Authorization": f"Token {token}"}
        api = f"{live_platform.url}/api/trades/exports/"
        pk = requests.post(api, json={"format": "parquet"}, headers=headers, timeout=10).json()["id"]
        deadline = time.monotonic() + 60
        job = {}
        while time.monotonic() < deadline:
            job = requests.get(f"{api}{pk}/", headers=headers, timeout=10).json()
            if job["status"] == "running" and job["message"] == TEST_HOLD_MESSAGE:
                break
            assert job["status"] in ("queued", "running"), job
            time.sleep(0.05)
        assert job["status"] == "running" and job["message"] == TEST_HOLD_MESSAGE, (job, live_platform.output())
        response = requests.post(f"{api}{pk}/cancel/", headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        while time.monotonic() < deadline:
            job = requests.get(f"{api}{pk}/", headers=headers, timeout=10).json()
            if job["status"] in ("cancelled", "succeeded", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "cancelled", job
        assert job["download_url"] is None and job["started_at"] is not None
        assert hold.exists()  # the worker stopped because of the cancel, not because the hold ended
        latest = requests.get(f"{api}latest/", headers=headers, timeout=10)
        assert latest.status_code == 404
    finally:
        hold.unlink(missing_ok=True)
        live_platform.env.pop("TRADES_EXPORT_TEST_HOLD_FILE", None)
        live_platform.stop_worker()  # the next test's fixture starts a worker without the hold


def test_waiting_exports_do_not_hold_a_worker(live_platform, user, tmp_path):
    """One export slot, two worker processes: while the first export runs (held before writing),
    the next two are parked by the one free worker, which would otherwise be stuck waiting with the
    third task still in the broker; they run, in order, once the first one finishes."""
    from trades.models import WAITING_MESSAGE
    from trades.services import TEST_HOLD_MESSAGE

    trades_generate(tickers=4, days=3, rows=20_000, seed=3)
    hold = tmp_path / "hold"
    hold.touch()
    live_platform.stop_worker()
    extra = {"TRADES_EXPORT_TEST_HOLD_FILE": str(hold), "TRADES_EXPORT_CONCURRENCY": "1", "Q_WORKERS": "2"}
    live_platform.env.update(extra)
    live_platform.start_worker()
    try:
        token = api_token(user)
        headers = {"Authorization": f"Token {token}"}
        api = f"{live_platform.url}/api/trades/exports/"
        pks = []
        for exchanges in ([10], [12], [10, 12]):
            response = requests.post(api, json={"exchanges": exchanges}, headers=headers, timeout=10)
            assert response.status_code == 202, response.text
            pks.append(response.json()["id"])

        def jobs():
            return [requests.get(f"{api}{pk}/", headers=headers, timeout=10).json() for pk in pks]

        deadline = time.monotonic() + 60
        states = []
        while time.monotonic() < deadline:
            states = jobs()
            running = [j for j in states if j["status"] == "running" and j["message"] == TEST_HOLD_MESSAGE]
            parked = [j for j in states if j["status"] == "queued" and j["queue_position"]]
            if len(running) == 1 and len(parked) == 2:
                break
            time.sleep(0.1)
        running = [j for j in states if j["status"] == "running"]
        parked = sorted((j for j in states if j["status"] == "queued"), key=lambda j: j["queue_position"] or 0)
        assert len(running) == 1 and len(parked) == 2, (states, live_platform.output())
        assert [j["queue_position"] for j in parked] == [1, 2]
        assert parked[0]["message"] == f"{WAITING_MESSAGE} (position 1)"
        assert all(j["started_at"] is None for j in parked)
        hold.unlink()
        while time.monotonic() < deadline:
            states = jobs()
            if all(j["status"] in ("succeeded", "failed", "cancelled") for j in states):
                break
            time.sleep(0.1)
        assert [j["status"] for j in states] == ["succeeded"] * 3, states
        # The parked ones started only after the running one finished, oldest request first.
        first = running[0]["id"]
        when = datetime.fromisoformat
        order = sorted(states, key=lambda j: when(j["started_at"]))
        assert order[0]["id"] == first and [j["id"] for j in order[1:]] == [j["id"] for j in parked]
        assert when(order[0]["finished_at"]) <= when(order[1]["started_at"])
        assert when(order[1]["finished_at"]) <= when(order[2]["started_at"])
    finally:
        hold.unlink(missing_ok=True)
        for key in extra:
            live_platform.env.pop(key, None)
        live_platform.stop_worker()
