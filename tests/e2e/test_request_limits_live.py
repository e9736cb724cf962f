"""Request bodies against a real uvicorn server: chunked bodies (no Content-Length) get the same limits and
errors as any other body, and nothing past the server-wide cap is read or stored."""

import http.client
import json
import os
import signal
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest

from analyzer.models import AnalysisSession
from conftest import BASE_DIR, _wait_http, database_url, free_port

pytestmark = pytest.mark.e2e

UPLOAD_LIMIT = 200_000
SERVER_CAP = UPLOAD_LIMIT + 1024**2  # REQUEST_MAX_BODY_BYTES' default: the analyzer's limit + 1 MiB
DEPTH_MESSAGE = "JSON parse error - the document nests arrays and objects more than 64 levels deep."


def send(url: str, method: str, path: str, *, headers: dict, chunks=None, body: bytes | None = None):
    """One request; `chunks` (an iterable) goes out with Transfer-Encoding: chunked and no Content-Length."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        if chunks is not None:
            conn.request(method, path, body=iter(chunks), headers=headers, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def multipart(name: str, content: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def in_chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def csv_of(size: int) -> bytes:
    row = b"2024-01-02,AAPL,10,185.5\n"
    return b"date,symbol,qty,price\n" + row * (size // len(row))


@pytest.fixture
def token_headers(auth_client, root_user):
    return {"Authorization": f"Token {auth_client(root_user).token}"}


@pytest.fixture
def small_limit_server(transactional_db, tmp_path):
    """A uvicorn server of its own with a 200 KB analyzer upload limit (so a 1.2 MB server-wide cap)."""
    port = free_port()
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(), "ANALYZER_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "PLATFORM_MEDIA_ROOT": str(tmp_path / "media"), "Q_QUEUE_NAME": f"limits{os.getpid()}",
        "DJANGO_DEBUG": "true", "PYTHONUNBUFFERED": "1",
    })
    env.pop("PYTEST_VERSION", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = tmp_path / "web.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--lifespan", "off", "--log-level", "warning"],
        cwd=BASE_DIR, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/accounts/login/", 60, [proc])
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def test_chunked_upload_within_the_limits_is_accepted(small_limit_server, token_headers, root_user):
    content_type, body = multipart("small.csv", csv_of(50_000))
    status, _, answer = send(small_limit_server, "POST", "/api/analyzer/upload/",
                             headers={**token_headers, "Content-Type": content_type}, chunks=in_chunks(body))
    assert status == 202, answer
    session = AnalysisSession.objects.get(pk=json.loads(answer)["session_id"])
    assert session.owner == root_user and session.file_size == len(csv_of(50_000))


def test_chunked_upload_over_the_analyzer_limit_is_the_analyzers_413(small_limit_server, token_headers):
    content_type, body = multipart("big.csv", csv_of(500_000))
    assert UPLOAD_LIMIT < len(body) < SERVER_CAP
    status, ctype, answer = send(small_limit_server, "POST", "/api/analyzer/upload/",
                                 headers={**token_headers, "Content-Type": content_type}, chunks=in_chunks(body))
    assert (status, ctype) == (413, "application/json")
    assert json.loads(answer) == {"file": ["The file is too large; the limit is 200,000 bytes."]}
    assert not AnalysisSession.objects.exists()


def test_chunked_body_over_the_server_cap_is_a_json_413(small_limit_server, token_headers):
    content_type, body = multipart("huge.csv", csv_of(2 * 1024**2))
    status, ctype, answer = send(small_limit_server, "POST", "/api/analyzer/upload/",
                                 headers={**token_headers, "Content-Type": content_type}, chunks=in_chunks(body))
    assert (status, ctype) == (413, "application/json")
    assert json.loads(answer) == {"detail": f"The request body is too large; the limit is {SERVER_CAP:,} bytes."}
    assert not AnalysisSession.objects.exists()


def test_declared_length_over_the_cap_is_refused_before_the_body_is_sent(small_limit_server, token_headers):
    parts = urlsplit(small_limit_server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest("POST", "/api/analyzer/upload/")
        for name, value in {**token_headers, "Content-Type": "multipart/form-data; boundary=x",
                            "Content-Length": str(10 * 1024**3)}.items():
            conn.putheader(name, value)
        conn.endheaders()  # no body follows: the answer must come anyway
        response = conn.getresponse()
        assert (response.status, response.getheader("Content-Type")) == (413, "application/json")
        assert json.loads(response.read()) == {
            "detail": f"The request body is too large; the limit is {SERVER_CAP:,} bytes."}
    finally:
        conn.close()


def test_chunked_json_is_parsed_and_bounded(live_platform, token_headers):
    headers = {**token_headers, "Content-Type": "application/json"}
    deep = b"[" * 5000 + b"]" * 5000
    status, _, answer = send(live_platform.url, "POST", "/api/trades/preview/", headers=headers,
                             chunks=in_chunks(deep, 1000))
    assert status == 400 and json.loads(answer) == {"detail": DEPTH_MESSAGE}

    big = json.dumps({"username": "x" * (10 * 1024**2)}).encode()
    status, ctype, answer = send(live_platform.url, "POST", "/api/users/", headers=headers, chunks=in_chunks(big))
    assert (status, ctype) == (413, "application/json")
    assert json.loads(answer) == {"detail": "The request body is too large; the limit is 10,485,760 bytes."}

    # A chunked body that fits is read like any other (today's bug: it looked empty).
    body = json.dumps({"username": "chunky", "email": "chunky@example.com", "password": "correct-Horse-9"}).encode()
    status, _, answer = send(live_platform.url, "POST", "/api/users/", headers=headers, chunks=in_chunks(body, 10))
    assert status == 201, answer
    assert json.loads(answer)["username"] == "chunky"
