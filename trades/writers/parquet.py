"""Parquet (zstd): from the COPY stream cut into row groups on PostgreSQL, from a batched cursor elsewhere."""

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
        rows = copy_csv(select=select, sink=sink, on_progress=on_progress)
        complete = True
    finally:
        sink.close(complete=complete)
        writer.close()
    target.flush()
    return rows


def write_parquet(*, params: ExportParams, select: SelectSQL, target: AtomicExportFile, on_progress) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if connection.vendor == "postgresql":
        return _write_parquet_pg(params=params, select=select, target=target, on_progress=on_progress)

    schema = _parquet_schema(params)
    rows = 0
    writer = pq.ParquetWriter(target, schema, compression="zstd")
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
