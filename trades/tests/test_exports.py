"""Export jobs: files vs pandas, dedupe/attach, slots, cancel, retention, Range downloads, ownership."""

import gzip
import hashlib
import io
import os
import threading
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage
from django.db import connection

from core.models import JobStatus
from trades import conf, services, tasks
from trades.models import Export
from trades.params import ExportParams

# Exports read on their own database connection (so progress commits show live while
# the read streams): the test data must be committed, hence transactional tests.
pytestmark = pytest.mark.django_db(transaction=True)


def request_export(user, **fields):
    params = ExportParams(**fields)
    return services.export_request(user=user, params=params)


def run_export(export):
    tasks.export_run(export.pk)
    export.refresh_from_db()
    return export


def read_file(export) -> bytes:
    with default_storage.open(export.file_name, "rb") as fh:
        return fh.read()


def visible_files() -> list[str]:
    root = os.path.join(default_storage.location, conf.EXPORT_DIR)
    found = []
    for dirpath, _dirs, files in os.walk(root):
        found += [os.path.join(dirpath, f) for f in files]
    return found


@pytest.mark.parametrize("fmt", ["csv", "csv_gz", "parquet"])
def test_export_file_matches_pandas(trades_frame, user, fmt):
    result = request_export(user, exchanges=(10, 12), sizelow=1, sizehigh=5000, operations=("PRICE*SIZE",),
                            sortby="price_desc", format=fmt)
    assert result.outcome == "created"
    export = run_export(result.export)
    assert export.status == JobStatus.SUCCEEDED, export.error
    data = read_file(export)
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert len(data) == export.size_bytes
    if fmt == "parquet":
        got = pq.read_table(io.BytesIO(data)).to_pandas()
    else:
        got = pd.read_csv(io.BytesIO(gzip.decompress(data) if fmt == "csv_gz" else data))
    exp = trades_frame[trades_frame["exchange_id"].isin([10, 12]) & trades_frame["size"].between(1, 5000)]
    exp = exp.sort_values(["price", "id"], ascending=False)
    assert export.rows_written == len(exp) == len(got)
    assert got.columns.tolist()[-1] == "PRICE*SIZE"
    assert got["price"].tolist() == exp["price"].tolist()
    assert got["participant_timestamp"].tolist() == exp["participant_timestamp"].tolist()
    assert (got["PRICE*SIZE"] - exp["price"].to_numpy() * exp["size"].to_numpy()).abs().max() < 1e-6


def test_parquet_encodings_statistics_and_codec(trades_frame, user):
    """Dictionaries only where values repeat, delta-encoded timestamps, zstd, statistics on every column."""
    export = run_export(request_export(user, exchanges=(10, 12), operations=("PRICE*SIZE",), format="parquet").export)
    assert export.status == JobStatus.SUCCEEDED, export.error
    meta = pq.ParquetFile(io.BytesIO(read_file(export))).metadata
    assert meta.num_rows == export.rows_written > 0
    columns = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert "RLE_DICTIONARY" in columns["ticker"].encodings and "RLE_DICTIONARY" in columns["exchange"].encodings
    assert "DELTA_BINARY_PACKED" in columns["participant_timestamp"].encodings
    assert "RLE_DICTIONARY" not in columns["participant_timestamp"].encodings
    assert "RLE_DICTIONARY" not in columns["PRICE*SIZE"].encodings
    for column in columns.values():
        assert column.compression == "ZSTD"
        assert column.statistics is not None and column.statistics.has_min_max
    lowest = min(meta.row_group(g).column(2).statistics.min for g in range(meta.num_row_groups))
    assert lowest == int(trades_frame["participant_timestamp"][trades_frame["exchange_id"].isin([10, 12])].min())


def test_dedupe_attach_and_existing(trades_data, user, other_user):
    first = request_export(user, exchanges=(12,))
    assert first.outcome == "created"
    again = request_export(user, exchanges=(12,))
    assert again.outcome == "attached" and again.export.pk == first.export.pk
    # same request by someone else is a different export
    assert request_export(other_user, exchanges=(12,)).export.pk != first.export.pk
    run_export(first.export)
    done = request_export(user, exchanges=(12,))
    assert done.outcome == "existing" and done.export.pk == first.export.pk
    # a different request (format) is a new job
    assert request_export(user, exchanges=(12,), format="parquet").outcome == "created"


def test_missing_file_means_a_new_export(trades_data, user):
    export = run_export(request_export(user, exchanges=(12,)).export)
    default_storage.delete(export.file_name)
    result = request_export(user, exchanges=(12,))
    assert result.outcome == "created"
    export.refresh_from_db()
    assert export.expired_at is not None


def test_cancel_while_running_leaves_no_file(trades_data, user, monkeypatch):
    from trades import writers

    monkeypatch.setattr(writers.pgcopy, "COPY_BUFFER", 4096)  # PostgreSQL COPY reports per buffer
    monkeypatch.setattr(conf, "EXPORT_BATCH_ROWS", 200)
    monkeypatch.setattr(conf, "EXPORT_PROGRESS_SECONDS", 0.0)
    export = request_export(user).export
    original = services._Progress.__call__
    calls = {"n": 0}

    def cancelling(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            services.export_cancel(export=Export.objects.get(pk=self.export.pk), by=user)
        return original(self, rows)

    monkeypatch.setattr(services._Progress, "__call__", cancelling)
    export = run_export(export)
    assert export.status == JobStatus.CANCELLED
    assert export.file_name == "" and export.slot is None
    assert visible_files() == []
    partial = os.path.join(default_storage.location, conf.EXPORT_DIR, str(user.pk), ".partial")
    assert not os.path.exists(partial) or os.listdir(partial) == []


def test_failed_export_leaves_no_file(trades_data, user, monkeypatch):
    from trades import writers

    def explode(**kwargs):
        kwargs["target"].write(b"half a file")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(writers, "write_export", explode)
    export = run_export(request_export(user).export)
    assert export.status == JobStatus.FAILED and "disk on fire" in export.error
    assert visible_files() == []


def test_cancel_queued_export(trades_data, user):
    export = request_export(user).export
    services.export_cancel(export=export, by=user)
    export = run_export(export)
    assert export.status == JobStatus.CANCELLED


@pytest.fixture
def broker(monkeypatch):
    """Records the tasks handed to django-q2 (no worker in these tests: the test runs them)."""
    sent: list[tuple[str, int]] = []

    def async_task(func, *args, **kwargs):
        sent.append((func, *args))
        return f"task-{len(sent)}"

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    return sent


def test_waiting_export_is_parked_and_runs_when_the_slot_frees(trades_data, user, monkeypatch, broker):
    from trades import writers

    monkeypatch.setattr(writers.pgcopy, "COPY_BUFFER", 4096)
    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 1)
    monkeypatch.setattr(conf, "EXPORT_BATCH_ROWS", 100)
    monkeypatch.setattr(conf, "EXPORT_PROGRESS_SECONDS", 0.0)
    first = request_export(user, exchanges=(10,)).export
    second = request_export(user, exchanges=(12,)).export
    assert broker == [(Export.task_func, first.pk), (Export.task_func, second.pk)]
    seen = {}
    original = services._Progress.__call__

    def second_task_meanwhile(self, rows):
        if self.export.pk == first.pk and not seen:
            # A worker picks up the second task while the first export holds the only slot:
            # the task parks the export and returns (it holds no worker while it waits).
            tasks.export_run(second.pk)
            seen["second"] = Export.objects.get(pk=second.pk)
            seen["first"] = Export.objects.get(pk=first.pk)
        return original(self, rows)

    monkeypatch.setattr(services._Progress, "__call__", second_task_meanwhile)
    tasks.export_run(first.pk)
    waiting = seen["second"]
    assert seen["first"].status == JobStatus.RUNNING and seen["first"].slot == 0
    assert waiting.status == JobStatus.QUEUED and waiting.started_at is None
    assert waiting.slot is None and waiting.parked_at is not None
    assert waiting.task_id == ""  # the recovery pass leaves it alone (no lost task to look for)
    assert waiting.queue_position == 1
    assert waiting.status_message == "Queued — waiting for a free export slot (position 1)"
    first.refresh_from_db()
    assert first.status == JobStatus.SUCCEEDED and first.slot is None
    # The finished export handed its slot over and queued the second export's task again.
    second.refresh_from_db()
    assert second.status == JobStatus.QUEUED and second.slot == 0 and second.parked_at is None
    assert broker[-1] == (Export.task_func, second.pk) and second.task_id == f"task-{len(broker)}"
    tasks.export_run(second.pk)
    second.refresh_from_db()
    assert second.status == JobStatus.SUCCEEDED and second.slot is None and second.rows_written > 0
    tasks.export_run(second.pk)  # a duplicate task never runs it twice
    assert Export.objects.get(pk=second.pk).finished_at == second.finished_at


def test_parked_exports_queue_positions_cancel_attach_and_recovery(trades_data, user, monkeypatch, broker):
    from datetime import timedelta

    from django.utils import timezone

    from core.recovery import jobs_recover

    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 1)
    holder = request_export(user, exchanges=(10,)).export
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.RUNNING, slot=0)
    a = request_export(user, exchanges=(12,)).export
    b = request_export(user, exchanges=(10, 12)).export
    tasks.export_run(a.pk)
    tasks.export_run(b.pk)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.queue_position, b.status, b.queue_position) == (JobStatus.QUEUED, 1, JobStatus.QUEUED, 2)
    # An identical request attaches to the parked export.
    again = request_export(user, exchanges=(12,))
    assert again.outcome == "attached" and again.export.pk == a.pk
    # The recovery pass does not take a parked export for a lost task.
    Export.objects.filter(pk__in=[a.pk, b.pk]).update(created_at=timezone.now() - timedelta(hours=1))
    jobs_recover(stale_seconds=60)
    assert set(Export.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {JobStatus.QUEUED}
    # A parked export can be cancelled; the next one moves up.
    services.export_cancel(export=a, by=user)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == JobStatus.CANCELLED and a.queue_position is None
    assert b.queue_position == 1
    # The holder finishes: its slot goes to b (the cancelled a is skipped).
    sent = len(broker)
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.SUCCEEDED, slot=None)
    assert services.exports_dispatch() == 1
    b.refresh_from_db()
    assert b.slot == 0 and broker[sent:] == [(Export.task_func, b.pk)]
    # b is cancelled after it was handed the slot but before its task ran: the slot is freed.
    services.export_cancel(export=b, by=user)
    tasks.export_run(b.pk)
    b.refresh_from_db()
    assert b.status == JobStatus.CANCELLED and b.slot is None and b.started_at is None


def test_free_slots_go_to_the_oldest_waiting_export(trades_data, user, monkeypatch, broker):
    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 1)
    holder = request_export(user, exchanges=(10,)).export
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.RUNNING, slot=0)
    older = request_export(user, exchanges=(12,)).export
    tasks.export_run(older.pk)  # parked
    newer = request_export(user, exchanges=(10, 12), format="csv_gz").export
    # The holder ends (its hand-over not run yet) and the newer export's task arrives first.
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.SUCCEEDED, slot=None)
    sent = len(broker)
    tasks.export_run(newer.pk)
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.slot == 0 and broker[sent:] == [(Export.task_func, older.pk)]
    assert newer.status == JobStatus.QUEUED and newer.queue_position == 1 and newer.started_at is None
    tasks.export_run(older.pk)
    newer.refresh_from_db()
    assert Export.objects.get(pk=older.pk).status == JobStatus.SUCCEEDED
    assert newer.slot == 0 and broker[-1] == (Export.task_func, newer.pk)
    tasks.export_run(newer.pk)
    assert Export.objects.get(pk=newer.pk).status == JobStatus.SUCCEEDED


def test_two_exports_run_at_once_with_two_slots(trades_data, user, monkeypatch):
    from trades import writers

    monkeypatch.setattr(writers.pgcopy, "COPY_BUFFER", 4096)
    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 2)
    monkeypatch.setattr(conf, "EXPORT_BATCH_ROWS", 100)
    monkeypatch.setattr(conf, "EXPORT_PROGRESS_SECONDS", 0.0)
    barrier = threading.Barrier(2, timeout=20)
    original = services._Progress.__call__
    met = {}

    def meet(self, rows):
        if self.export.pk not in met:
            met[self.export.pk] = Export.objects.get(pk=self.export.pk).slot
            barrier.wait()  # both exports are inside their writers at the same moment
        return original(self, rows)

    monkeypatch.setattr(services._Progress, "__call__", meet)
    exports = [request_export(user, exchanges=(x,)).export for x in (10, 12)]
    threads = [threading.Thread(target=lambda pk=e.pk: (tasks.export_run(pk), connection.close())) for e in exports]
    [t.start() for t in threads]
    [t.join(timeout=60) for t in threads]
    assert sorted(met.values()) == [0, 1]
    assert all(Export.objects.get(pk=e.pk).status == JobStatus.SUCCEEDED for e in exports)


def test_retention_latest_per_user_and_most_recent_users(trades_data, make_user, monkeypatch, auth_client):
    monkeypatch.setattr(conf, "EXPORT_KEEP_PER_USER", 1)
    monkeypatch.setattr(conf, "EXPORT_KEEP_USERS", 2)
    u1, u2, u3 = make_user("u1"), make_user("u2"), make_user("u3")
    old = run_export(request_export(u1, exchanges=(10,)).export)
    new = run_export(request_export(u1, exchanges=(12,)).export)
    old.refresh_from_db()
    assert old.expired_at is not None and not default_storage.exists(old.file_name)
    assert new.is_available and default_storage.exists(new.file_name)
    run_export(request_export(u2, exchanges=(10,)).export)
    run_export(request_export(u3, exchanges=(10,)).export)  # u1 is now the least recent user
    new.refresh_from_db()
    assert new.expired_at is not None and not default_storage.exists(new.file_name)
    response = auth_client(u1).get("/api/trades/exports/latest/")
    assert response.status_code == 404
    assert "expired" in response.json()["detail"] and "retention" in response.json()["detail"]
    response = auth_client(u1).get(f"/api/trades/exports/{new.pk}/download/")
    assert response.status_code == 404 and "retention" in response.json()["detail"]
    assert auth_client(u3).get("/api/trades/exports/latest/").status_code == 200


def test_retention_max_age(trades_data, user, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    export = run_export(request_export(user).export)
    Export.objects.filter(pk=export.pk).update(finished_at=timezone.now() - timedelta(hours=5))
    monkeypatch.setattr(conf, "EXPORT_MAX_AGE_HOURS", 1.0)
    assert services.exports_retention_apply() == 1
    export.refresh_from_db()
    assert export.expired_at is not None


# --- downloads with Range --------------------------------------------------------------------


@pytest.fixture
def finished_export(trades_data, user):
    return run_export(request_export(user, operations=("PRICE*SIZE",), sortby="time_asc").export)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_range_resume_of_a_cut_download(finished_export, auth_client, user):
    client = auth_client(user)
    url = f"/api/trades/exports/{finished_export.pk}/download/"
    full = client.get(url)
    assert full.status_code == 200 and full["Accept-Ranges"] == "bytes"
    etag = full["ETag"]
    data = body(full)
    cut = data[: len(data) // 3]  # the connection broke here
    rest = client.get(url, HTTP_RANGE=f"bytes={len(cut)}-", HTTP_IF_RANGE=etag)
    assert rest.status_code == 206
    assert rest["Content-Range"] == f"bytes {len(cut)}-{len(data) - 1}/{len(data)}"
    resumed = cut + body(rest)
    assert hashlib.sha256(resumed).hexdigest() == finished_export.sha256 == hashlib.sha256(data).hexdigest()


def test_range_edge_cases(finished_export, auth_client, user):
    client = auth_client(user)
    url = f"/api/trades/exports/{finished_export.pk}/download/"
    size = finished_export.size_bytes
    assert body(client.get(url, HTTP_RANGE="bytes=0-9")) == read_file(finished_export)[:10]
    tail = client.get(url, HTTP_RANGE="bytes=-5")
    assert tail.status_code == 206 and body(tail) == read_file(finished_export)[-5:]
    beyond = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"
    stale = client.get(url, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"some-other-version"')
    assert stale.status_code == 200 and len(body(stale)) == size
    garbage = client.get(url, HTTP_RANGE="bytes=abc")
    assert garbage.status_code == 200


def test_page_download_supports_range_too(finished_export, client, user):
    client.force_login(user)
    response = client.get(f"/trades/exports/{finished_export.pk}/download/", HTTP_RANGE="bytes=5-")
    assert response.status_code == 206
    assert "attachment" in response["Content-Disposition"]


# --- ownership (negative tests) ---------------------------------------------------------------


def test_other_users_cannot_see_download_or_cancel(finished_export, auth_client, other_user, user, client):
    other = auth_client(other_user)
    pk = finished_export.pk
    assert other.get(f"/api/trades/exports/{pk}/").status_code == 404
    assert other.get(f"/api/trades/exports/{pk}/download/").status_code == 404
    assert other.post(f"/api/trades/exports/{pk}/cancel/").status_code == 404
    assert pk not in [e["id"] for e in other.get("/api/trades/exports/").json()["results"]]
    assert other.get("/api/trades/exports/latest/").status_code == 404
    client.force_login(other_user)
    assert client.get(f"/trades/exports/{pk}/").status_code == 404
    assert client.get(f"/trades/exports/{pk}/download/").status_code == 404
    assert client.post(f"/trades/exports/{pk}/cancel/").status_code == 404


def test_staff_can_see_and_download(finished_export, auth_client, admin_user):
    staff = auth_client(admin_user)
    assert staff.get(f"/api/trades/exports/{finished_export.pk}/").status_code == 200
    assert staff.get(f"/api/trades/exports/{finished_export.pk}/download/").status_code == 200


def test_anonymous_is_refused(finished_export, api_client, client):
    assert api_client.get(f"/api/trades/exports/{finished_export.pk}/download/").status_code in (401, 403)
    assert api_client.post("/api/trades/exports/", {}, format="json").status_code in (401, 403)
    assert client.get(f"/trades/exports/{finished_export.pk}/download/").status_code == 302


def test_worker_lost_cleans_slot_and_partial_file(trades_data, user):
    from trades import writers

    export = request_export(user).export
    Export.objects.filter(pk=export.pk).update(status=JobStatus.RUNNING, slot=0)
    leftover = writers.AtomicExportFile(
        writers.export_storage_name(owner_id=user.pk, pk=export.pk, extension="csv"), tag=str(export.pk)
    )
    leftover.write(b"half")
    leftover.flush()
    export.refresh_from_db()
    from core.signals import job_worker_lost

    job_worker_lost.send(sender=Export, job=export)  # what core's recovery pass sends
    export.refresh_from_db()
    assert export.slot is None
    assert not os.path.exists(leftover.tmp_path)


def test_recovery_pass_hands_a_slot_left_free_by_a_dead_worker(trades_data, user, monkeypatch, broker):
    """A worker that died between releasing its slot and handing it on leaves an export parked;
    the periodic recovery pass hands the free slot out."""
    from core.recovery import jobs_recover

    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 1)
    holder = request_export(user, exchanges=(10,)).export
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.RUNNING, slot=0)
    waiting = request_export(user, exchanges=(12,)).export
    tasks.export_run(waiting.pk)  # parked behind the holder
    waiting.refresh_from_db()
    assert waiting.parked_at is not None and waiting.slot is None
    jobs_recover(stale_seconds=60)
    waiting.refresh_from_db()
    assert waiting.slot is None, "the slot is still held: nothing to hand out"
    # The holder's worker releases the slot and dies before dispatching.
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.SUCCEEDED, slot=None)
    sent = len(broker)
    jobs_recover(stale_seconds=60)
    waiting.refresh_from_db()
    assert waiting.slot == 0 and waiting.parked_at is None
    assert broker[sent:] == [(Export.task_func, waiting.pk)]
