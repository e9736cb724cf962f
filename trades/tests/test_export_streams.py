"""Multi-stream exports (TRADES_EXPORT_STREAMS): several concurrent COPYs of disjoint timestamp
slices concatenated in order give exactly the single-stream file (PostgreSQL); no effect on SQLite."""

import gzip
import hashlib
import os
import shutil
import subprocess
import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from core.models import JobStatus
from trades import conf, selectors, services, tasks, writers
from trades.models import Export, Trade
from trades.params import BUCKETS_NS, ExportParams
from trades.tests.test_exports import visible_files

pytestmark = pytest.mark.django_db(transaction=True)

TIE_ROWS = 1500


def needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("multi-stream exports are PostgreSQL only")


@pytest.fixture
def tie_data(trades_data):
    """The market of `trades_data` plus TIE_ROWS trades sharing the median timestamp, so that a
    slice boundary falls on a timestamp many trades share."""
    stamps = sorted(Trade.objects.values_list("participant_timestamp", flat=True))
    tie = stamps[len(stamps) // 2]
    tickers = sorted(set(Trade.objects.values_list("ticker", flat=True)))
    Trade.objects.bulk_create(
        Trade(ticker=tickers[i % len(tickers)], exchange_id=(10, 12, 4)[i % 3], participant_timestamp=tie,
              price=10.0 + (i % 97) / 4, size=100 * (1 + i % 7))
        for i in range(TIE_ROWS)
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Trade._meta.db_table}")
    return tie


def export_bytes(user, monkeypatch, streams: int, **fields) -> tuple[bytes, Export]:
    monkeypatch.setattr(conf, "EXPORT_STREAMS", streams)
    params = ExportParams(**fields)
    Export.objects.filter(owner=user, signature=params.signature(owner_id=user.pk)).delete()
    export = services.export_request(user=user, params=params).export
    tasks.export_run(export.pk)
    export.refresh_from_db()
    assert export.status == JobStatus.SUCCEEDED, export.error
    with default_storage.open(export.file_name, "rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert len(data) == export.size_bytes
    return data, export


def partial_dir(user) -> str:
    return os.path.join(default_storage.location, conf.EXPORT_DIR, str(user.pk), ".partial")


def count_slices(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = writers.sliced._copy_slice

    def counting(**kwargs):
        calls.append(kwargs["index"])
        return original(**kwargs)

    monkeypatch.setattr(writers.sliced, "_copy_slice", counting)
    return calls


VARIANTS = {
    "newest": dict(operations=("PRICE*SIZE",), sortby="time_desc"),
    "oldest": dict(exchanges=(10, 12), operations=("(PRICE-1)^2/SIZE",), sortby="time_asc"),
    "aggregated_hr": dict(operations=("PRICE*SIZE",), aggregateby="hr", sortby=None, aggregate_fn="avg"),
    "aggregated_s": dict(operations=("PRICE",), aggregateby="s", sortby=None),
    "newest_gzip": dict(operations=("PRICE*SIZE",), sortby="time_desc", format="csv_gz"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("sample", ["sample", "min_max"])
def test_streams_give_the_single_stream_file(tie_data, user, monkeypatch, variant, sample):
    needs_postgres()
    fields = VARIANTS[variant]
    if sample == "min_max":  # the equal-width fallback (sample too small)
        monkeypatch.setattr(selectors, "SLICE_MIN_SAMPLE", 10**9)
    params = ExportParams(**fields)
    bounds = selectors.export_slice_bounds(params=params, streams=2)
    assert bounds
    if sample == "sample" and not params.aggregated:
        assert bounds == [tie_data]  # the boundary is the timestamp TIE_ROWS trades share
    if params.aggregated:  # cut on bucket boundaries
        assert all(b % BUCKETS_NS[params.aggregateby] == 0 for b in bounds)
    single, export = export_bytes(user, monkeypatch, 1, **fields)
    gz = fields.get("format") == "csv_gz"
    plain = gzip.decompress(single) if gz else single
    assert plain.count(b"\n") == export.rows_written + 1
    calls = count_slices(monkeypatch)
    for streams in (2, 3):
        calls.clear()
        data, export_n = export_bytes(user, monkeypatch, streams, **fields)
        assert len(calls) >= 2, "the multi-stream path was not used"
        assert export_n.rows_written == export.rows_written
        if gz:
            assert gzip.decompress(data) == plain
            with gzip.open(default_storage.path(export_n.file_name), "rb") as fh:
                assert fh.read() == plain
            if shutil.which("gzip"):
                out = subprocess.run(["gzip", "-dc", default_storage.path(export_n.file_name)], capture_output=True,
                                     check=True)
                assert out.stdout == plain
        else:
            assert data == single


def test_other_sorts_and_parquet_keep_one_stream(trades_data, monkeypatch):
    monkeypatch.setattr(conf, "EXPORT_STREAMS", 3)
    expected = 3 if connection.vendor == "postgresql" else 1
    assert writers.export_streams(ExportParams(sortby="time_desc")) == expected
    assert writers.export_streams(ExportParams(sortby="time_asc", format="csv_gz")) == expected
    assert writers.export_streams(ExportParams(aggregateby="min", sortby=None)) == expected
    assert writers.export_streams(ExportParams(sortby="price_desc")) == 1
    assert writers.export_streams(ExportParams(sortby="size_asc")) == 1
    assert writers.export_streams(ExportParams(sortby="time_desc", format="parquet")) == 1
    monkeypatch.setattr(conf, "EXPORT_STREAMS", 1)
    assert writers.export_streams(ExportParams(sortby="time_desc")) == 1


def test_setting_has_no_effect_on_sqlite(trades_data, user, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert selectors.export_slice_bounds(params=ExportParams(), streams=3) == []
    calls = count_slices(monkeypatch)
    single, _ = export_bytes(user, monkeypatch, 1, operations=("PRICE*SIZE",))
    multi, _ = export_bytes(user, monkeypatch, 3, operations=("PRICE*SIZE",))
    assert multi == single and calls == []


def test_cancel_mid_export_removes_all_parts(tie_data, user, monkeypatch):
    needs_postgres()
    monkeypatch.setattr(conf, "EXPORT_STREAMS", 3)
    monkeypatch.setattr(conf, "EXPORT_PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(selectors, "SLICE_MIN_SAMPLE", 10**9)  # equal widths: 3 slices for sure
    parked = threading.Semaphore(0)
    original = writers.sliced._copy_slice

    def slice_then_hold(**kwargs):
        rows = original(**kwargs)
        parked.release()
        kwargs["stop"].wait(20)  # still "running" until the export is cancelled
        if kwargs["stop"].is_set():
            raise writers.sliced._Stopped
        return rows

    monkeypatch.setattr(writers.sliced, "_copy_slice", slice_then_hold)
    seen = {}
    progress = services._Progress.__call__

    def cancelling(self, rows):
        if rows == 0:
            return progress(self, rows)
        if "parts" not in seen:
            for _ in range(3):
                assert parked.acquire(timeout=20)
            seen["parts"] = sorted(os.listdir(partial_dir(user)))
            services.export_cancel(export=Export.objects.get(pk=self.export.pk), by=user)
        return progress(self, rows)

    monkeypatch.setattr(services._Progress, "__call__", cancelling)
    export = services.export_request(user=user, params=ExportParams(operations=("PRICE*SIZE",))).export
    tasks.export_run(export.pk)
    export.refresh_from_db()
    assert export.status == JobStatus.CANCELLED
    assert len([p for p in seen["parts"] if ".s" in p]) == 2  # two part files + the final temporary file
    assert len(seen["parts"]) == 3
    assert visible_files() == []
    assert os.listdir(partial_dir(user)) == []


@pytest.mark.parametrize("sortby", ["time_asc", "time_desc"])
def test_a_failing_slice_fails_the_export_and_leaves_no_file(tie_data, user, monkeypatch, sortby):
    needs_postgres()
    monkeypatch.setattr(conf, "EXPORT_STREAMS", 3)
    original = selectors.export_select

    def one_slice_breaks(**kwargs):
        select = original(**kwargs)
        ts_range = kwargs.get("ts_range")
        if ts_range is not None and ts_range[0] is not None and ts_range[1] is None:  # the latest slice
            select = selectors.SelectSQL(select.sql.replace("SELECT ", "SELECT 1 / (t.size - t.size) AS boom, ", 1),
                                         select.params, select.columns)
        return select

    monkeypatch.setattr(selectors, "export_select", one_slice_breaks)
    calls = count_slices(monkeypatch)
    export = services.export_request(user=user, params=ExportParams(sortby=sortby)).export
    tasks.export_run(export.pk)
    export.refresh_from_db()
    assert len(calls) >= 2
    assert export.status == JobStatus.FAILED
    assert "division by zero" in export.error
    assert export.file_name == "" and export.slot is None
    assert visible_files() == []
    assert os.listdir(partial_dir(user)) == []
