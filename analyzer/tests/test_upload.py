"""Upload validation and processing: what is detected, what is refused and why.

Cheap checks (name, extension, size, magic bytes, binary data) refuse the upload at once; the
rest is found by the background processing job, which ends failed with the reason.
"""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from analyzer import services
from analyzer.models import AnalysisSession, Answer, Processing
from analyzer.tests.conftest import SAMPLE_CSV, create_session, gz_bytes, process, upload_of

pytestmark = pytest.mark.django_db


def create(user, name, content, **kw):
    """Upload and process (as the worker would): the ready session."""
    session = create_session(user, name, content, **kw)
    assert session.processing.status == "succeeded" and services.session_status(session=session) == "ready"
    return session


def refused(user, name, content) -> str:
    """Refused by the upload request itself: no session, no job, no files."""
    with pytest.raises(ValidationError) as info:
        services.session_create_from_upload(owner=user, upload=upload_of(name, content), auto_analyze=False)
    assert not AnalysisSession.objects.exists() and not Processing.objects.exists()
    return " ".join(info.value.message_dict["file"])


def failed(user, name, content) -> str:
    """Accepted by the upload, refused by the processing job: the session is failed, has no files, takes no questions."""
    session = services.session_create_from_upload(owner=user, upload=upload_of(name, content))
    assert session.processing.status == "queued" and services.session_status(session=session) == "processing"
    session = process(session)
    job = session.processing
    assert job.status == "failed" and job.stage == "failed" and services.session_status(session=session) == "failed"
    assert not default_storage.exists(session.storage_dir) and session.original_name == ""
    assert not Answer.objects.filter(session=session).exists()  # no auto-analysis of a broken file
    with pytest.raises(ValidationError, match="could not be processed") as info:
        services.answer_request(session=session, user=user, text="How many rows are there?")
    assert job.error in " ".join(info.value.messages)
    return job.error


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
    assert failed(user, "header.csv", "a,b,c\n") == "The file has no data rows (only a header)."


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
    message = failed(user, "bad.csv", "a,b\n1,2,3\n4,5,6\n7,8,9\n")
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
    refused(user, "garbage.csv", b"\x00\x01binary")
    failed(user, "header.csv", "a,b,c\n")
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


def test_processing_reports_stages_and_progress(user):
    from core.models import JobEvent

    session = create(user, "trades.csv", SAMPLE_CSV)
    events = list(JobEvent.objects.filter(job_kind="analyzer.processing", job_id=session.processing.pk).order_by("seq"))
    assert [e.kind for e in events] == ["stage"] * 4 + ["timings", "stage"]
    stages = [e.data["stage"] for e in events if e.kind == "stage"]
    assert stages == ["sniff", "load", "profile", "save", "done"]
    job = session.processing
    assert job.progress == 1.0 and job.message == "10 rows × 5 columns" and session.processing_seconds > 0


def test_processing_records_how_long_each_step_took(user, monkeypatch):
    import time

    from analyzer import ingest
    from core.models import JobEvent

    profile_columns = ingest.profile_columns

    def slow_profile(*args, **kwargs):
        time.sleep(0.3)
        return profile_columns(*args, **kwargs)

    monkeypatch.setattr(ingest, "profile_columns", slow_profile)
    session = create(user, "trades.csv", SAMPLE_CSV)
    timings = JobEvent.objects.get(job_kind="analyzer.processing", job_id=session.processing.pk, kind="timings").data
    seconds = timings["seconds"]
    assert set(seconds) == {"sniff", "load", "profile", "preview", "checkpoint"}
    assert all(value >= 0 for value in seconds.values())
    assert seconds["profile"] >= 0.3 > max(seconds["sniff"], seconds["load"], seconds["preview"])
    assert sum(seconds.values()) <= timings["total"] and timings["total"] >= session.processing_seconds


def test_upload_stores_the_bytes_and_queues_the_job_without_parsing(user, monkeypatch):
    def no_parsing(**kwargs):
        raise AssertionError("the upload request must not parse the file")

    monkeypatch.setattr(services.processing, "upload_ingest", no_parsing)
    session = services.session_create_from_upload(owner=user, upload=upload_of("trades.csv", SAMPLE_CSV))
    job = session.processing
    assert (job.status, job.owner, job.auto_analyze) == ("queued", user, True)
    assert default_storage.open(session.original_name).read() == SAMPLE_CSV.encode()
    assert (session.row_count, session.columns, session.preview) == (0, [], [])
    with pytest.raises(ValidationError, match="still being processed"):
        services.answer_request(session=session, user=user, text="How many rows are there?")
    with pytest.raises(ValidationError, match="still being processed"):
        services.answer_request(session=session, user=user, mode=Answer.Mode.AUTO_ANALYZE)


def test_a_large_temporary_upload_is_moved_not_copied(user, tmp_path, settings):
    from django.core.files.uploadedfile import TemporaryUploadedFile

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    upload = TemporaryUploadedFile("trades.csv", "text/csv", len(SAMPLE_CSV), "utf-8")
    upload.write(SAMPLE_CSV.encode())
    upload.flush()
    upload.seek(0)
    temp_path = upload.temporary_file_path()
    inode = __import__("os").stat(temp_path).st_ino
    session = services.session_create_from_upload(owner=user, upload=upload, auto_analyze=False)
    stored = default_storage.path(session.original_name)
    assert __import__("os").stat(stored).st_ino == inode  # renamed in place
    upload.close()  # Django's cleanup of a moved temporary file is harmless
    assert process(session).row_count == 10


def test_cancelled_processing_leaves_a_failed_session_without_files(user):
    from core import services as core_services

    session = services.session_create_from_upload(owner=user, upload=upload_of("trades.csv", SAMPLE_CSV))
    core_services.job_cancel(job=session.processing, by=user)
    session = process(session)  # the worker picks it up: nothing runs, the stored bytes go
    assert session.processing.status == "cancelled" and services.session_status(session=session) == "failed"
    assert not default_storage.exists(session.storage_dir) and session.original_name == ""
    with pytest.raises(ValidationError, match="cancelled"):
        services.answer_request(session=session, user=user, text="How many rows are there?")


def test_worker_lost_during_processing_queues_it_again_once_then_fails_the_session_and_drops_files(user):
    from datetime import timedelta

    from django.utils import timezone

    from core import recovery as core_recovery

    session = services.session_create_from_upload(owner=user, upload=upload_of("trades.csv", SAMPLE_CSV))
    past = timezone.now() - timedelta(hours=1)
    # Processing is safe to run again: the first lost worker queues it again, once…
    Processing.objects.filter(pk=session.processing.pk).update(status="running", heartbeat_at=past, started_at=past)
    counts = core_recovery.jobs_recover(stale_seconds=60)
    assert counts["worker_lost"] == 1 and counts["requeued"] == 1
    processing = Processing.objects.get(pk=session.processing.pk)
    assert processing.status == "queued" and processing.requeues == 1
    assert services.session_status(session=AnalysisSession.objects.get(pk=session.pk)) == "processing"
    # …and a second lost worker fails the session and drops its files.
    Processing.objects.filter(pk=session.processing.pk).update(status="running", heartbeat_at=past, started_at=past)
    counts = core_recovery.jobs_recover(stale_seconds=60)
    assert counts["worker_lost"] == 1 and counts["requeued"] == 0
    session = AnalysisSession.objects.get(pk=session.pk)
    assert services.session_status(session=session) == "failed"
    assert "worker processing this file stopped" in services.processing_error(job=session.processing)
    assert not default_storage.exists(session.storage_dir)


@pytest.mark.django_db(transaction=True)
def test_progress_watcher_reports_duckdb_progress_and_interrupts_on_cancel(user, monkeypatch):
    """The worker-side watcher (off in inline runs): reads DuckDB's query_progress() into the job, and
    interrupts DuckDB when the owner cancels."""
    import duckdb

    from analyzer.ingest import _connect
    from core import services as core_services
    from core.jobkit import JobReporter

    session = services.session_create_from_upload(owner=user, upload=upload_of("trades.csv", SAMPLE_CSV))
    job = session.processing
    Processing.objects.filter(pk=job.pk).update(status="running")
    monkeypatch.setattr(services.ProcessingProgress, "poll_seconds", 0.05)
    progress = services.ProcessingProgress(JobReporter(job, inline=False))
    slow = "SELECT count(DISTINCT md5(range::VARCHAR)) FROM range(6000000)"
    seen = []
    con = _connect()
    real_progress = core_services.job_progress

    def spy(**kwargs):
        seen.append(kwargs["fraction"])
        real_progress(**kwargs)

    monkeypatch.setattr(core_services, "job_progress", spy)
    with progress.watch(con, start=0.05, end=0.85):
        con.execute(slow).fetchall()
    assert seen and all(0.05 <= f <= 0.85 for f in seen)
    assert Processing.objects.get(pk=job.pk).progress == seen[-1]

    core_services.job_cancel(job=job, by=user)
    with pytest.raises(duckdb.InterruptException):
        with progress.watch(con, start=0.05, end=0.85):
            con.execute(slow).fetchall()
    con.close()
