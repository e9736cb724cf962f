"""Streaming an export's SELECT into a file: flat memory, atomic publication.

PostgreSQL + CSV: `COPY (SELECT …) TO STDOUT` through psycopg, bytes straight
to the file (the database's own formatter is the fastest there is).
Everything else (SQLite, Parquet): a server-side / chunked cursor read in
batches. The file is written under a hidden temporary name in the same
filesystem and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection

from trades import conf
from trades.models import ExportFormat
from trades.params import ExportParams
from trades.selectors import SelectSQL

ProgressFn = Callable[[int], None]

_COPY_BUFFER = 1 << 20


class AtomicExportFile:
    """A binary sink that hashes what it writes and appears in storage only on `commit()`."""

    def __init__(self, name: str, *, tag: str = ""):
        self.name = name
        self.sha = hashlib.sha256()
        self.size = 0
        self._committed = False
        try:
            self.final_path = default_storage.path(name)
        except NotImplementedError:  # remote storage: stage locally, upload on commit
            self.final_path = None
        if self.final_path:
            partial_dir = os.path.join(os.path.dirname(self.final_path), ".partial")
        else:
            partial_dir = settings.FILE_UPLOAD_TEMP_DIR
        os.makedirs(partial_dir, exist_ok=True)
        self.tmp_path = os.path.join(partial_dir, f"{tag}{'-' if tag else ''}{uuid.uuid4().hex}.part")
        self._fh = open(self.tmp_path, "wb", buffering=_COPY_BUFFER)  # noqa: SIM115

    # file-like protocol used by gzip / pyarrow
    def write(self, data) -> int:
        self._fh.write(data)
        self.sha.update(data)
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._fh.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def close(self) -> None:  # pyarrow closes its sink; the real close is commit/abort
        self._fh.flush()

    def commit(self) -> str:
        self._fh.close()
        if self.final_path:
            os.makedirs(os.path.dirname(self.final_path), exist_ok=True)
            os.replace(self.tmp_path, self.final_path)
            saved = self.name
        else:
            with open(self.tmp_path, "rb") as fh:
                saved = default_storage.save(self.name, File(fh))
            os.remove(self.tmp_path)
        self._committed = True
        return saved

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if not self._committed:
            try:
                os.remove(self.tmp_path)
            except FileNotFoundError:
                pass

    @property
    def hexdigest(self) -> str:
        return self.sha.hexdigest()


def header_bytes(columns: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(columns)
    return buf.getvalue().encode()


def write_export(*, params: ExportParams, select: SelectSQL, target: AtomicExportFile, on_progress: ProgressFn) -> int:
    """Write the whole output; returns the number of data rows."""
    fmt = params.format
    if fmt == ExportFormat.PARQUET:
        return _write_parquet(params=params, select=select, target=target, on_progress=on_progress)
    sink = target
    gz = None
    if fmt == ExportFormat.CSV_GZ:
        gz = gzip.GzipFile(fileobj=target, mode="wb", compresslevel=conf.EXPORT_GZIP_LEVEL, mtime=0)
        sink = gz
    sink.write(header_bytes(select.columns))
    if connection.vendor == "postgresql":
        rows = _copy_csv(select=select, sink=sink, on_progress=on_progress)
    else:
        rows = _cursor_csv(select=select, sink=sink, on_progress=on_progress)
    if gz is not None:
        gz.close()
    target.flush()
    return rows


@contextmanager
def pg_reader():
    """A dedicated PostgreSQL connection for the long read, so that progress writes on
    Django's connection commit (and show) while the read streams."""
    params = connection.get_connection_params()
    raw = connection.Database.connect(**params)
    try:
        if conf.EXPORT_WORK_MEM:
            # Room for the ORDER BY / GROUP BY sort in memory instead of temp files.
            raw.execute("SELECT set_config('work_mem', %s, false)", [conf.EXPORT_WORK_MEM])
        yield raw
    finally:
        raw.close()


def _copy_csv(*, select: SelectSQL, sink, on_progress: ProgressFn) -> int:
    """COPY … TO STDOUT read at the libpq level.

    The server sends one CopyData message per row; psycopg's `Copy` iterator costs a
    few microseconds of Python per row, `PGconn.get_copy_data` about a tenth of that,
    which keeps the export at the speed of the database's own COPY. Rows are gathered
    into 1 MB writes.
    """
    from psycopg import ClientCursor, errors, pq

    rows = 0
    buffer = bytearray()
    with pg_reader() as raw:
        raw.commit()
        query = ClientCursor(raw).mogrify(f"COPY ({select.sql}) TO STDOUT WITH (FORMAT csv)", select.params)
        pgconn = raw.pgconn
        pgconn.send_query(query.encode())
        result = pgconn.get_result()
        if result is None or result.status != pq.ExecStatus.COPY_OUT:
            message = result.error_message.decode(errors="replace") if result is not None else "no result"
            raise errors.OperationalError(f"COPY did not start: {message}")
        finished = False
        try:
            while True:
                nbytes, data = pgconn.get_copy_data(0)  # blocking: one row
                if nbytes == -1:
                    break
                if nbytes == -2:
                    raise errors.OperationalError(pgconn.error_message.decode(errors="replace"))
                buffer += data
                rows += 1
                if len(buffer) >= _COPY_BUFFER:
                    sink.write(bytes(buffer))
                    buffer.clear()
                    on_progress(rows)
            finished = True
        finally:
            if not finished:  # cancelled or failed: stop the server's work, drain the stream
                pgconn.get_cancel().cancel()
                while pgconn.get_copy_data(0)[0] >= 0:
                    pass
            while (result := pgconn.get_result()) is not None:
                if finished and result.status != pq.ExecStatus.COMMAND_OK:
                    raise errors.OperationalError(result.error_message.decode(errors="replace"))
    if buffer:
        sink.write(bytes(buffer))
    on_progress(rows)
    return rows


def _cursor_csv(*, select: SelectSQL, sink, on_progress: ProgressFn) -> int:
    rows = 0
    text = io.TextIOWrapper(_NonClosing(sink), encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text, lineterminator="\n")
    with _row_cursor(select) as cursor:
        while True:
            batch = cursor.fetchmany(conf.EXPORT_BATCH_ROWS)
            if not batch:
                break
            writer.writerows(batch)
            rows += len(batch)
            text.flush()
            on_progress(rows)
    text.flush()
    text.detach()
    return rows


@contextmanager
def _row_cursor(select: SelectSQL):
    """A cursor over the SELECT that fetches in batches: a named server-side cursor on
    PostgreSQL (its own connection and transaction), SQLite's stepping cursor elsewhere."""
    if connection.vendor == "postgresql":
        with pg_reader() as raw, raw.transaction():
            with raw.cursor(name=f"trades_export_{uuid.uuid4().hex[:12]}") as cursor:
                cursor.itersize = conf.EXPORT_BATCH_ROWS
                cursor.execute(select.sql, select.params)
                yield cursor
        return
    # SQLite: its own connection too. A reading statement pins a WAL snapshot; a write on
    # that same connection would then fail with "database is locked" as soon as another
    # export has written. (And no transaction.atomic(): IMMEDIATE would take the write lock.)
    import sqlite3

    from trades.expressions import safe_pow

    raw = sqlite3.connect(connection.settings_dict["NAME"], timeout=30, check_same_thread=False)
    try:
        raw.create_function("trades_pow", 2, safe_pow, deterministic=True)
        cursor = raw.execute(select.sql.replace("%s", "?"), select.params)
        yield cursor
    finally:
        raw.close()


class _NonClosing(io.RawIOBase):
    def __init__(self, sink):
        self.sink = sink

    def writable(self):
        return True

    def write(self, data):
        return self.sink.write(bytes(data))


def _parquet_schema(params: ExportParams):
    import pyarrow as pa

    if params.aggregated:
        fields = [
            ("bucket_start", pa.int64()), ("ticker", pa.string()), ("trade_count", pa.int64()),
            ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
            ("total_size", pa.int64()),
        ]
    else:
        fields = [
            ("ticker", pa.string()), ("exchange", pa.int64()), ("participant_timestamp", pa.int64()),
            ("price", pa.float64()), ("size", pa.int64()), ("del_t", pa.int64()), ("del_p", pa.float64()),
        ]
    base = len(fields)
    fields += [(name, pa.float64()) for name in params.columns[base:]]
    return pa.schema(fields)


class _ParquetRowGroups:
    """A sink for COPY's CSV bytes (always whole rows): every ~8 MB is parsed by Arrow's
    CSV reader (C++) and written as one row group, on a helper thread so that parsing
    overlaps the COPY (Arrow releases the GIL). At most two batches wait: memory stays flat."""

    def __init__(self, writer, schema, batch_bytes: int = 8 << 20):
        import queue
        import threading

        import pyarrow.csv as pacsv

        self.writer, self.schema, self.batch_bytes = writer, schema, batch_bytes
        self.pending: list[bytes] = []
        self.size = 0
        self.read_options = pacsv.ReadOptions(column_names=schema.names, use_threads=False, block_size=batch_bytes * 2)
        self.convert_options = pacsv.ConvertOptions(column_types={f.name: f.type for f in schema})
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._convert, name="parquet-row-groups", daemon=True)
        self.thread.start()

    def _convert(self) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        while (data := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                table = pacsv.read_csv(pa.py_buffer(data), read_options=self.read_options,
                                       convert_options=self.convert_options)
                self.writer.write_table(table.cast(self.schema))
            except BaseException as exc:  # reported by the writing thread
                self.error = exc

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        self.pending.append(data)
        self.size += len(data)
        if self.size >= self.batch_bytes:
            self.queue.put(b"".join(self.pending))
            self.pending, self.size = [], 0
        return len(data)

    def close(self, *, complete: bool) -> None:
        if complete and self.size:
            self.queue.put(b"".join(self.pending))
        self.pending, self.size = [], 0
        self.queue.put(None)
        self.thread.join()
        if complete and self.error is not None:
            raise self.error


def _write_parquet_pg(*, params: ExportParams, select: SelectSQL, target: AtomicExportFile, on_progress) -> int:
    """PostgreSQL → Parquet at COPY speed: the COPY stream is cut at row boundaries into
    row groups converted by Arrow's C++ CSV parser (no Python work per row)."""
    import pyarrow.parquet as pq

    schema = _parquet_schema(params)
    writer = pq.ParquetWriter(target, schema, compression="zstd")
    sink = _ParquetRowGroups(writer, schema)
    complete = False
    try:
        rows = _copy_csv(select=select, sink=sink, on_progress=on_progress)
        complete = True
    finally:
        sink.close(complete=complete)
        writer.close()
    target.flush()
    return rows


def _write_parquet(*, params: ExportParams, select: SelectSQL, target: AtomicExportFile, on_progress) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if connection.vendor == "postgresql":
        return _write_parquet_pg(params=params, select=select, target=target, on_progress=on_progress)

    schema = _parquet_schema(params)
    rows = 0
    writer = pq.ParquetWriter(target, schema, compression="zstd")
    try:
        with _row_cursor(select) as cursor:
            while True:
                batch = cursor.fetchmany(conf.EXPORT_BATCH_ROWS)
                if not batch:
                    break
                columns = list(zip(*batch))
                arrays = [pa.array(col, type=field.type) for col, field in zip(columns, schema)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(batch)
                on_progress(rows)
    finally:
        writer.close()
    target.flush()
    return rows


def export_storage_name(*, owner_id: int, pk: int, extension: str) -> str:
    return str(PurePosixPath(conf.EXPORT_DIR) / str(int(owner_id)) / f"export-{int(pk)}-{uuid.uuid4().hex[:8]}.{extension}")


def partial_files_remove(*, owner_id: int, tag: str) -> int:
    """Delete temporary files a crashed export left behind (its worker was killed)."""
    name = export_storage_name(owner_id=owner_id, pk=0, extension="x")
    try:
        folder = os.path.join(os.path.dirname(default_storage.path(name)), ".partial")
    except NotImplementedError:
        folder = settings.FILE_UPLOAD_TEMP_DIR
    removed = 0
    if os.path.isdir(folder):
        for entry in os.listdir(folder):
            if entry.startswith(f"{tag}-") and entry.endswith(".part"):
                os.remove(os.path.join(folder, entry))
                removed += 1
    return removed
