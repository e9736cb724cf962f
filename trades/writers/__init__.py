"""Streaming an export's SELECT into a file: flat memory, atomic publication.

- `sink`: the export's storage name and the hashed sink, published whole through core's storage helpers;
- `pgcopy`: PostgreSQL CSV, one `COPY … TO STDOUT` at the libpq level;
- `sliced`: PostgreSQL CSV from several COPYs of disjoint time slices, joined in order;
- `cursor`: CSV from a cursor read in batches (SQLite);
- `parquet`: Parquet from the COPY stream (PostgreSQL) or a batched cursor.
"""

from __future__ import annotations

import gzip

from django.db import connection

from trades import conf, selectors
from trades.models import ExportFormat
from trades.params import ExportParams
from trades.selectors import SelectSQL
from trades.writers.cursor import cursor_csv
from trades.writers.parquet import write_parquet
from trades.writers.pgcopy import ProgressFn, copy_csv
from trades.writers.sink import AtomicExportFile, export_storage_name, header_bytes, partial_files_remove
from trades.writers.sliced import export_streams, write_csv_sliced

__all__ = ["AtomicExportFile", "export_storage_name", "export_streams", "partial_files_remove", "write_export"]


def write_export(*, params: ExportParams, select: SelectSQL, target: AtomicExportFile, on_progress: ProgressFn) -> int:
    """Write the whole output; returns the number of data rows."""
    fmt = params.format
    if fmt == ExportFormat.PARQUET:
        return write_parquet(params=params, select=select, target=target, on_progress=on_progress)
    streams = export_streams(params)
    if streams > 1:
        bounds = selectors.export_slice_bounds(params=params, streams=streams)
        if bounds:
            return write_csv_sliced(params=params, bounds=bounds, target=target, on_progress=on_progress)
    sink = target
    gz = None
    if fmt == ExportFormat.CSV_GZ:
        gz = gzip.GzipFile(fileobj=target, mode="wb", compresslevel=conf.EXPORT_GZIP_LEVEL, mtime=0)
        sink = gz
    sink.write(header_bytes(select.columns))
    if connection.vendor == "postgresql":
        rows = copy_csv(select=select, sink=sink, on_progress=on_progress)
    else:
        rows = cursor_csv(select=select, sink=sink, on_progress=on_progress)
    if gz is not None:
        gz.close()
    target.flush()
    return rows
