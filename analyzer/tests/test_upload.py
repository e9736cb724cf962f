"""Upload validation and processing: what is detected, what is refused and why."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from analyzer import services
from analyzer.models import AnalysisSession
from analyzer.tests.conftest import SAMPLE_CSV, gz_bytes, upload_of

pytestmark = pytest.mark.django_db


def create(user, name, content, **kw):
    return services.session_create_from_upload(owner=user, upload=upload_of(name, content), auto_analyze=False, **kw)


def refused(user, name, content) -> str:
    with pytest.raises(ValidationError) as info:
        create(user, name, content)
    assert not AnalysisSession.objects.exists()
    return " ".join(info.value.message_dict["file"])


def test_csv_upload_creates_session_with_preview_profile_and_detection(user):
    session = create(user, "trades.csv", SAMPLE_CSV)
    assert session.owner == user and session.title == "trades.csv"
    assert (session.row_count, session.column_count) == (10, 5)
    assert [c["name"] for c in session.columns] == ["date", "symbol", "side", "qty", "price"]
    types = {c["name"]: c["type"] for c in session.columns}
    assert types["date"] == "DATE" and types["qty"] == "BIGINT" and types["price"] == "DOUBLE"
    assert len(session.preview) == 10 and session.preview[0] == {
        "date": "2024-01-02", "symbol": "AAPL", "side": "buy", "qty": 10, "price": 185.5}
    assert session.detection["delimiter"] == "comma" and session.detection["header"] is True
    assert session.detection["encoding"] == "utf-8" and session.detection["rejected_rows"] == 0
    qty = next(p for p in session.profile if p["name"] == "qty")
    assert (qty["min"], qty["max"], qty["nulls"]) == (3, 20, 0)
    assert qty["mean"] == pytest.approx(9.3)
    symbol = next(p for p in session.profile if p["name"] == "symbol")
    assert symbol["distinct"] == 4 and symbol["top_values"][0] == "AAPL"
    assert default_storage.exists(session.data_name)


def test_preview_is_capped(user, settings):
    rows = "\n".join(f"{i},{i * 2}" for i in range(1200))
    session = create(user, "big.csv", "a,b\n" + rows + "\n")
    assert session.row_count == 1200 and len(session.preview) == 500


def test_wrong_extension(user):
    assert "Unsupported file type" in refused(user, "notes.txt", "a,b\n1,2\n")


def test_empty_file(user):
    assert refused(user, "empty.csv", b"") == "The file is empty."


def test_blank_lines_only(user):
    assert "empty" in refused(user, "blank.csv", "\n\n  \n")


def test_garbage_binary(user):
    import random

    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(5000))
    assert "does not look like a CSV" in refused(user, "garbage.csv", garbage)


def test_header_only(user):
    assert refused(user, "header.csv", "a,b,c\n") == "The file has no data rows (only a header)."


def test_semicolon_latin1_with_decimal_comma(user):
    content = "name;city;amount\nJosé;München;1,5\nAnna;Köln;2\n".encode("latin-1")
    session = create(user, "umlauts.csv", content)
    d = session.detection
    assert (d["delimiter"], d["encoding"], d["decimal_separator"]) == ("semicolon", "latin-1", ",")
    assert session.preview[0] == {"name": "José", "city": "München", "amount": 1.5}


def test_quoted_newlines(user):
    session = create(user, "notes.csv", 'id,note\n1,"hello\nworld"\n2,plain\n')
    assert session.row_count == 2
    assert session.preview[0]["note"] == "hello\nworld"


def test_ragged_rows_are_rejected_and_reported(user):
    session = create(user, "ragged.csv", "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    assert session.row_count == 2
    d = session.detection
    assert d["delimiter"] == "comma" and d["rejected_rows"] == 2
    assert [r["line"] for r in d["rejected_samples"]] == [3, 4]
    assert "Expected Number of Columns: 3 Found: 2" in d["rejected_samples"][0]["message"]


def test_unparseable_csv_gives_duckdb_reason(user):
    # Every data row is malformed: nothing can be read.
    message = refused(user, "bad.csv", "a,b\n1,2,3\n4,5,6\n7,8,9\n")
    assert message == ("Could not parse the CSV: all 3 rows were rejected (first problem at line 2: too many columns, "
                       "Expected Number of Columns: 2 Found: 3).")


def test_gzip_csv(user):
    session = create(user, "trades.csv.gz", gz_bytes(SAMPLE_CSV))
    assert session.row_count == 10 and session.detection["compressed"] is True


def test_corrupt_gzip(user):
    assert "compressed" in refused(user, "broken.csv.gz", b"not gzip at all")


def test_parquet_upload(user, tmp_path):
    import duckdb

    path = tmp_path / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id, range * 1.5 AS x FROM range(42)) TO '{path}' (FORMAT parquet)")
    session = create(user, "t.parquet", path.read_bytes())
    assert session.file_format == "parquet" and session.row_count == 42
    assert [c["name"] for c in session.columns] == ["id", "x"]


def test_corrupt_parquet(user):
    assert "Could not read the Parquet file" in refused(user, "bad.pq", b"PAR1 definitely not parquet")


def test_too_large(user, monkeypatch):
    from analyzer import conf

    monkeypatch.setattr(conf, "MAX_UPLOAD_BYTES", 10)
    assert "too large" in refused(user, "trades.csv", SAMPLE_CSV)


def test_failed_upload_leaves_no_files(user, media_root):
    refused(user, "header.csv", "a,b,c\n")
    leftovers = [p for p in (media_root / "analyzer").rglob("*") if p.is_file()] if (media_root / "analyzer").exists() else []
    assert leftovers == []


def test_delete_session_removes_rows_and_files(user, media_root, django_capture_on_commit_callbacks):
    session = create(user, "trades.csv", SAMPLE_CSV)
    folder = media_root / session.storage_dir
    assert folder.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.session_delete(session=session)
    assert not AnalysisSession.objects.exists()
    assert not folder.exists()
