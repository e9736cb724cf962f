"""The platform on an S3-compatible store through real processes: a web server and a worker, each with a
var folder of its own (no shared local disk), both on one bucket of a real S3 server on 127.0.0.1 (moto).

An export is built by the worker and downloaded from the web server with a ranged resume; an analyzer
upload taken by the web server is processed and answered by the worker; a script uploaded to the web
server runs in the worker's sandbox. Nothing is written to either process's local media folder."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import BASE_DIR, S3_CREDENTIALS, S3Store, _wait_http, database_url, free_port
from tests.support import api_token, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def s3_platform(django_db_setup, django_db_blocker, s3_server, tmp_path_factory):
    bucket = f"live-{uuid.uuid4().hex[:12]}"
    store = S3Store(endpoint=s3_server, bucket=bucket, prefix="media",
                    url=f"s3://{bucket}/media?endpoint_url={s3_server}&region=us-east-1&addressing_style=path")
    store.client().create_bucket(Bucket=bucket)
    queue = f"s3live{os.getpid()}"
    base = dict(os.environ)
    for name in ("PYTEST_VERSION", "DJANGO_ALLOW_ASYNC_UNSAFE", "PLATFORM_MEDIA_ROOT"):
        base.pop(name, None)
    base.update(S3_CREDENTIALS)
    base.update({
        "DATABASE_URL": database_url(), "PLATFORM_STORAGE_URL": store.url, "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": "s3-live-test-" + uuid.uuid4().hex, "Q_CLUSTER_NAME": queue, "Q_QUEUE_NAME": queue,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
    })
    web_var, worker_var = tmp_path_factory.mktemp("s3-web-var"), tmp_path_factory.mktemp("s3-worker-var")
    port = free_port()
    web_log, worker_log = web_var / "web.log", worker_var / "worker.log"
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--ws", "websockets", "--lifespan", "off", "--log-level", "warning"],
        cwd=BASE_DIR, env={**base, "PLATFORM_VAR_DIR": str(web_var)}, stdout=open(web_log, "wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=BASE_DIR, env={**base, "PLATFORM_VAR_DIR": str(worker_var)},
        stdout=open(worker_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    procs = [web, worker]

    class Platform:
        url = f"http://127.0.0.1:{port}"
        s3 = store
        var_dirs = (web_var, worker_var)

        @staticmethod
        def output() -> str:
            return "\n---\n".join(p.read_text(errors="replace")[-4000:] for p in (web_log, worker_log))

    try:
        _wait_http(Platform.url + "/accounts/login/", 60, [web])
        yield Platform
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _local_media_files(platform) -> list[str]:
    found = []
    for var in platform.var_dirs:
        for folder, _dirs, files in os.walk(var / "media"):
            found += [os.path.join(folder, f) for f in files]
    return found


def _poll(client, url: str, done, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def test_an_export_built_by_the_worker_downloads_from_the_web_server_with_a_ranged_resume(
        s3_platform, transactional_db, user):
    from trades.loading import trades_generate

    trades_generate(tickers=4, days=3, rows=30_000, seed=5)
    token = api_token(user)
    client = httpx.Client(base_url=s3_platform.url, headers={"Authorization": f"Token {token}"}, timeout=30)
    started = client.post("/api/trades/exports/", json={"sortby": "time_asc", "format": "csv"})
    assert started.status_code == 202, started.text
    pk = started.json()["id"]
    detail = _poll(client, f"/api/trades/exports/{pk}/", lambda b: b["status"] in ("succeeded", "failed", "cancelled"))
    assert detail["status"] == "succeeded", (detail, s3_platform.output())
    from trades.models import Export

    name = Export.objects.get(pk=pk).file_name
    assert name in s3_platform.s3.keys() and _local_media_files(s3_platform) == []

    url = f"{s3_platform.url}/api/trades/exports/{pk}/download/"
    full = client.get(url).content
    assert hashlib.sha256(full).hexdigest() == detail["sha256"] and len(full) == detail["size_bytes"]
    part = full[: len(full) // 3]
    parsed = urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("GET", parsed.path, headers={"Authorization": f"Token {token}", "Range": f"bytes={len(part)}-",
                                              "If-Range": f'"{detail["sha256"]}"'})
    resumed = conn.getresponse()
    assert resumed.status == 206
    assert resumed.getheader("Content-Range") == f"bytes {len(part)}-{len(full) - 1}/{len(full)}"
    assert hashlib.sha256(part + resumed.read()).hexdigest() == detail["sha256"]
    conn.close()

    # Gone from the store: a clear 410 at once, never a 200 that then resets.
    s3_platform.s3.client().delete_object(Bucket=s3_platform.s3.bucket, Key=f"media/{name}")
    gone = client.get(url)
    assert gone.status_code == 410 and "no longer in storage" in gone.json()["detail"]


def test_an_analyzer_upload_is_processed_and_answered_by_a_worker_that_never_saw_it(
        s3_platform, transactional_db, user):
    from analyzer.models import AnalysisSession, Answer, Message

    token = api_token(user)
    rows = "".join(f"2024-01-{1 + i % 28:02d},{['AAPL', 'MSFT', 'GOOG'][i % 3]},{i % 50 + 1},{100 + i % 7}.5\n"
                   for i in range(300))
    response = httpx.post(f"{s3_platform.url}/api/analyzer/upload/", headers={"Authorization": f"Token {token}"},
                          files={"file": ("trades.csv", ("date,symbol,qty,price\n" + rows).encode(), "text/csv")},
                          timeout=60)
    assert response.status_code == 202, response.text
    session_id = response.json()["session_id"]
    assert wait_until(lambda: Answer.objects.filter(session_id=session_id, status__in=("succeeded", "failed")).exists(),
                      timeout=120), s3_platform.output()
    session = AnalysisSession.objects.get(pk=session_id)
    assert session.row_count == 300
    assert Answer.objects.get(session_id=session_id).status == "succeeded", s3_platform.output()
    # The auto-analysis charted the data: queries the worker ran on its copy of the stored DuckDB file.
    kinds = set(Message.objects.filter(session_id=session_id).values_list("kind", flat=True))
    assert "plot" in kinds or "query_result" in kinds, kinds
    assert "error" not in kinds
    assert session.data_name in s3_platform.s3.keys() and _local_media_files(s3_platform) == []
    worker_cache = s3_platform.var_dirs[1] / "cache" / "files"
    assert any(f.suffix == ".duckdb" for f in worker_cache.rglob("*"))  # the worker's own copy


def test_a_script_uploaded_to_the_web_server_runs_in_the_workers_sandbox(s3_platform, transactional_db, user):
    from scripts_runner import sandbox, services

    ok, error = sandbox.probe()
    if not ok:
        pytest.skip(f"the script sandbox cannot start here: {error}")
    services.script_access_set(user=user, run=True)
    client = httpx.Client(base_url=s3_platform.url, headers={"Authorization": f"Token {api_token(user)}"}, timeout=30)
    created = client.post("/api/scripts/", files={"file": ("hello.py", b"import sys\nprint('stored on s3', sys.argv[1:])\n")})
    assert created.status_code == 201, created.text
    script_id = created.json()["id"]
    run = client.post(f"/api/scripts/{script_id}/runs/", json={"args": ["x"]})
    assert run.status_code in (201, 202), run.text
    run_id = run.json()["id"]
    final = _poll(client, f"/api/runs/{run_id}/", lambda b: b["status"] in ("succeeded", "failed", "cancelled"))
    assert final["status"] == "succeeded", (final, s3_platform.output())
    assert client.get(f"/api/runs/{run_id}/log/").text.strip() == "stored on s3 ['x']"
    assert _local_media_files(s3_platform) == []
