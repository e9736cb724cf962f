"""Parquet (zstd): from the COPY stream cut into row groups on PostgreSQL, from a batched cursor elsewhere.

The file is as small as DuckDB's at the same codec and level: dictionary encoding only for the
columns that repeat (tickers, exchanges, sizes, prices — a dictionary of unique timestamps or
computed values only costs), delta encoding for the timestamps (sorted or nearly so), statistics
for every column (readers skip row groups by them)."""

from __future__ import annotations

from django.db import connection

from trades import conf
from trades.params import ExportParams
from trades.selectors import SelectSQL
from trades.writers.cursor import row_cursor
from trades.writers.pgcopy import copy_csv
from trades.writers.sink import AtomicExportFile


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


ZSTD_LEVEL = 3  # DuckDB's default level; bench/trades_export.py gives its anchor the same
# Columns whose values repeat: dictionary-encoded. Timestamps: delta-encoded. The rest (computed
# columns, nanosecond deltas) plain: their values are nearly all distinct.
_DICTIONARY = ("ticker", "exchange", "price", "size", "del_p", "trade_count", "open", "high", "low", "close")
_DELTA = ("participant_timestamp", "del_t", "bucket_start")


def _parquet_writer(target, schema):
    import pyarrow.parquet as pq

    names = set(schema.names)
    return pq.ParquetWriter(
        target, schema, compression="zstd", compression_level=ZSTD_LEVEL, write_statistics=True,
        use_dictionary=[name for name in _DICTIONARY if name in names],
        column_encoding={name: "DELTA_BINARY_PACKED" for name in _DELTA if name in names},
    )


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
    schema = _parquet_schema(params)
    writer = _parquet_writer(target, schema)
    sink = _ParquetRowGroups(writer, schema)
    complete = False
    try:
        rows = copy_csv(select=select, sink=sink, on_progress=on_progress)
        complete = True
    finally:
        sink.close(complete=complete)
        writer.close()
    target.flush()
    return rows


def write_parquet(*, params: ExportParams, select: SelectSQL, target: AtomicExportFile, on_progress) -> int:
    import pyarrow as pa

    if connection.vendor == "postgresql":
        return _write_parquet_pg(params=params, select=select, target=target, on_progress=on_progress)

    schema = _parquet_schema(params)
    rows = 0
    writer = _parquet_writer(target, schema)
    try:
        with row_cursor(select) as cursor:
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
