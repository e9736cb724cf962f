"""Compressed uploads are limited by what they expand to (ANALYZER_MAX_DECOMPRESSED_BYTES), not by their size.

gzip CSV: counted while decompressing, stopped at the limit. Parquet: judged by its metadata before reading.
"""

import gzip
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analyzer import conf, file_format, ingest
from analyzer.models import AnalysisSession
from analyzer.tests.conftest import process

pytestmark = pytest.mark.django_db

LIMIT = 1_000_000
ROW = b"2024-01-02,AAPL,buy,10,185.5\n"


def gzip_of_rows(rows: int) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as fh:
        fh.write(b"date,symbol,side,qty,price\n")
        for _ in range(rows // 10_000):
            fh.write(ROW * 10_000)
    return buffer.getvalue()


def parquet_of_rows(tmp_path, rows: int) -> bytes:
    import duckdb

    path = tmp_path / "big.parquet"
    duckdb.sql(f"COPY (SELECT range AS id, range * 1.5 AS x, md5(range::VARCHAR) AS h FROM range({rows})) "
               f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 20000)")
    return path.read_bytes()


def upload(auth_client, user, name: str, content: bytes):
    client = auth_client(user)
    response = client.post("/api/analyzer/upload/", {"file": SimpleUploadedFile(name, content)}, format="multipart")
    assert response.status_code == 202, response.content
    session = process(AnalysisSession.objects.get(pk=response.json()["session_id"]))
    return client, session


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(conf, "MAX_DECOMPRESSED_BYTES", LIMIT)


def test_gzip_bomb_is_refused_with_the_limit_on_the_api_and_the_page(auth_client, client, user, small_limit):
    bomb = gzip_of_rows(2_000_000)  # ~58 MB of CSV in ~100 KB
    assert len(bomb) < LIMIT // 5
    api, session = upload(auth_client, user, "bomb.csv.gz", bomb)
    message = ("The file is too large once decompressed: the limit is 1,000,000 bytes of uncompressed data.")
    assert session.processing.status == "failed" and session.processing.error == message
    detail = api.get(f"/api/analyzer/sessions/{session.pk}/").json()
    assert detail["status"] == "failed" and detail["error"] == message
    client.force_login(user)
    html = client.get(f"/analyzer/sessions/{session.pk}/").content.decode()
    assert 'data-testid="processing-error"' in html and message in html


def test_gzip_within_the_limit_is_processed(auth_client, user, small_limit):
    content = gzip_of_rows(30_000)  # 870 KB decompressed
    _, session = upload(auth_client, user, "ok.csv.gz", content)
    assert session.processing.status == "succeeded", session.processing.error
    assert session.row_count == 30_000 and session.detection["compressed"] is True


def test_gunzip_stops_at_the_limit_without_reading_the_rest(tmp_path, monkeypatch):
    src = tmp_path / "bomb.csv.gz"
    src.write_bytes(gzip_of_rows(4_000_000))  # ~116 MB once decompressed
    opened = []
    real_open = gzip.open

    def tracking_open(path, mode):
        raw = open(path, "rb")
        opened.append(raw)
        return real_open(raw, mode)

    monkeypatch.setattr(file_format.gzip, "open", tracking_open)
    dst = tmp_path / "plain.csv"
    with pytest.raises(file_format.IngestError, match="too large once decompressed"):
        file_format.gunzip_bounded(str(src), str(dst), limit=LIMIT)
    # Never more than the limit on disk, and most of the compressed stream was never read.
    assert dst.stat().st_size <= LIMIT
    assert opened[0].tell() < src.stat().st_size // 10


def test_gunzip_exactly_at_the_limit_is_accepted(tmp_path):
    src = tmp_path / "exact.csv.gz"
    src.write_bytes(gzip.compress(b"a\n" * (LIMIT // 2)))
    assert file_format.gunzip_bounded(str(src), str(tmp_path / "plain.csv"), limit=LIMIT) == LIMIT
    with pytest.raises(file_format.IngestError):
        file_format.gunzip_bounded(str(src), str(tmp_path / "plain.csv"), limit=LIMIT - 1)


def test_truncated_gzip_is_a_clear_error(auth_client, user):
    content = gzip_of_rows(30_000)
    _, session = upload(auth_client, user, "cut.csv.gz", content[: len(content) // 2])
    assert session.processing.status == "failed"
    assert session.processing.error.startswith("Could not read the compressed file: ")


def test_parquet_is_judged_by_its_metadata_before_reading(auth_client, user, small_limit, tmp_path, monkeypatch):
    content = parquet_of_rows(tmp_path, 100_000)
    import duckdb

    total = duckdb.connect().execute(
        f"SELECT sum(total_uncompressed_size) FROM parquet_metadata('{tmp_path / 'big.parquet'}')").fetchone()[0]
    assert total > LIMIT
    assert len(content) < total

    def must_not_load(*args, **kwargs):
        raise AssertionError("the rows were read")

    monkeypatch.setattr(ingest, "parquet_load", must_not_load)
    api, session = upload(auth_client, user, "big.parquet", content)
    message = (f"The Parquet file is too large once decompressed: its row groups hold {total:,} bytes "
               "uncompressed; the limit is 1,000,000 bytes.")
    assert session.processing.status == "failed" and session.processing.error == message
    assert api.get(f"/api/analyzer/sessions/{session.pk}/").json()["error"] == message


def test_parquet_within_the_limit_is_processed(auth_client, user, small_limit, tmp_path):
    _, session = upload(auth_client, user, "small.parquet", parquet_of_rows(tmp_path, 1000))
    assert session.processing.status == "succeeded", session.processing.error
    assert session.row_count == 1000


def test_default_limit_is_one_gibibyte():
    assert conf.MAX_DECOMPRESSED_BYTES == 1024**3
