"""A large upload streams through the request parser and DuckDB without being held in memory."""

import io
import json
import tracemalloc

import pytest
from django.test.client import ClientHandler

from analyzer import tasks
from analyzer.models import AnalysisSession, Processing
from tests.support import api_token

pytestmark = pytest.mark.django_db

BOUNDARY = "----analyzer-test-boundary-7f3a"
BLOCK_ROWS = 10_000


def csv_block() -> bytes:
    return "".join(f"{i},SYM{i % 50},{100 + (i % 977) / 10:.1f},{i % 13}\n" for i in range(BLOCK_ROWS)).encode()


class GeneratedBody(io.RawIOBase):
    """A multipart body produced on the fly: the test itself never holds the file either."""

    def __init__(self, parts):
        self.parts = iter(parts)
        self.pending = b""

    def readable(self):
        return True

    def read(self, size=-1):
        while size < 0 or len(self.pending) < size:
            try:
                self.pending += next(self.parts)
            except StopIteration:
                break
        if size < 0:
            size = len(self.pending)
        out, self.pending = self.pending[:size], self.pending[size:]
        return out

    def readline(self, size=-1):  # not used by the multipart parser, present for completeness
        return self.read(size)


def test_large_upload_streams_without_memory_growth(user, settings):
    blocks = 250  # 250 × 10,000 rows ≈ 75 MB
    block = csv_block()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + b"id,symbol,price,qty\n"
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    total = len(head) + blocks * len(block) + len(tail)
    body = GeneratedBody([head] + [block] * blocks + [tail])
    key = api_token(user)
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/analyzer/upload/", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": body, "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}", "CONTENT_LENGTH": str(total),
        "HTTP_AUTHORIZATION": f"Token {key}", "HTTP_ACCEPT": "application/json",
    }
    # Warm up first so lazily imported modules (DuckDB, pandas, altair…) do not count as upload memory.
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    warm = Client(HTTP_AUTHORIZATION=f"Token {key}")
    small = SimpleUploadedFile("warm.csv", b"a,b\n1,2\n")
    warm_response = warm.post("/api/analyzer/upload/", {"file": small, "auto_analyze": "false"})
    assert warm_response.status_code == 202
    tasks.processing_run(Processing.objects.get(session_id=warm_response.json()["session_id"]).pk)
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    try:
        # The test client's handler (it keeps the test database connection open), fed a real WSGI environ.
        response = ClientHandler()(environ)
        content = response.content
        assert response.status_code == 202, content[:500]
        payload = json.loads(content)
        # …and the processing job (run here as the worker would) parses it from disk with DuckDB.
        tasks.processing_run(payload["processing"]["id"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    session = AnalysisSession.objects.get(pk=payload["session_id"])
    assert session.processing.status == "succeeded", session.processing.error
    assert session.row_count == blocks * BLOCK_ROWS
    assert AnalysisSession.objects.get(pk=payload["session_id"]).file_size == total - len(head) - len(tail) + len(b"id,symbol,price,qty\n")
    # Python-side allocations stay far below the file size (the preview and profile are the only copies).
    growth = peak - baseline
    assert growth < 16 * 1024 * 1024, f"peak Python memory +{growth / 1e6:.1f} MB for a {total / 1e6:.0f} MB upload"
