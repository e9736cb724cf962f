"""Trade exports through a real server and a real worker: API flow, websocket progress,
and `curl -C -` resuming an interrupted download."""

import asyncio
import hashlib
import json
import shutil
import subprocess
import time

import pytest
import requests
import websockets
from rest_framework.authtoken.models import Token

from trades.loading import trades_generate

pytestmark = pytest.mark.e2e


def test_api_export_progress_and_curl_resume(live_platform, user, tmp_path):
    trades_generate(tickers=4, days=3, rows=40_000, seed=5)
    token = Token.objects.create(user=user).key
    headers = {"Authorization": f"Token {token}"}
    body = {"exchanges": [10, 12], "operations": [{"expression": "PRICE*SIZE"}], "sortby": "time_asc",
            "format": "csv"}
    started = requests.post(f"{live_platform.url}/api/trades/exports/", json=body, headers=headers, timeout=10)
    assert started.status_code == 202, started.text
    pk = started.json()["id"]

    async def follow():
        url = f"{live_platform.ws_url}/ws/trades/exports/{pk}/?token={token}"
        statuses = []
        async with websockets.connect(url, open_timeout=10) as ws:
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
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    out = tmp_path / "export.csv"
    out.write_bytes(full[: len(full) // 2])  # an interrupted download
    subprocess.run(["curl", "-sS", "-f", "-C", "-", "-o", str(out), "-H", f"Authorization: Token {token}", url],
                   check=True, timeout=60)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == detail["sha256"]

    other = Token.objects.create(user=type(user).objects.create(username="mallory")).key
    denied = requests.get(url, headers={"Authorization": f"Token {other}"}, timeout=10)
    assert denied.status_code == 404


def test_cancel_a_running_export_through_the_api(live_platform, user):
    trades_generate(tickers=6, days=5, rows=150_000, seed=9)
    token = Token.objects.create(user=user).key
    headers = {"Authorization": f"Token {token}"}
    pk = requests.post(f"{live_platform.url}/api/trades/exports/", json={"format": "parquet"}, headers=headers,
                       timeout=10).json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = requests.get(f"{live_platform.url}/api/trades/exports/{pk}/", headers=headers, timeout=10).json()
        if job["status"] != "queued":
            break
        time.sleep(0.05)
    response = requests.post(f"{live_platform.url}/api/trades/exports/{pk}/cancel/", headers=headers, timeout=10)
    if response.status_code == 409:
        pytest.skip("the export finished before it could be cancelled")
    assert response.status_code == 202
    while time.monotonic() < deadline:
        job = requests.get(f"{live_platform.url}/api/trades/exports/{pk}/", headers=headers, timeout=10).json()
        if job["status"] in ("cancelled", "succeeded", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "cancelled", job
    assert job["download_url"] is None
    latest = requests.get(f"{live_platform.url}/api/trades/exports/latest/", headers=headers, timeout=10)
    assert latest.status_code == 404
