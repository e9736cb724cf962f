"""Turning an uploaded CSV/Parquet file into a queryable DuckDB table, its profile and preview.

DuckDB does the work (sniffing, parsing, conversion, statistics) so the
file is streamed from disk and never held whole in memory by Python.
Every upload is loaded once into a DuckDB database file (table `data`): later
queries read DuckDB's compressed columnar storage instead of re-parsing text
(several times faster than Parquet for GROUP BY on text columns).

This module loads; `file_format` tells what a file is and refuses what cannot be used,
`profiling` describes the loaded table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field

import duckdb
from django.conf import settings

from analyzer import conf
from analyzer.duck import rows_read, sql_literal
from analyzer.file_format import (
    CSV_EXTENSIONS, PARQUET_EXTENSIONS, IngestError, check_magic, check_parquet_size, count_numeric,
    detect_encoding, file_extension, gunzip_bounded, read_head, short_message, sniff,
)
from analyzer.profiling import describe, is_numeric, is_temporal, profile_columns
from analyzer.rollup import rollup_build, rollup_drop

logger = logging.getLogger(__name__)

# Also read from here by the services and the agent (what an upload is, and column kinds).
__all__ = ["PARQUET_EXTENSIONS", "STAGES", "IngestError", "IngestResult", "Progress", "check_magic", "file_extension",
           "upload_ingest", "is_numeric", "is_temporal"]

# Stages of the processing, with the fraction of the work done when each starts.
STAGES = {
    "sniff": (0.0, "Detecting the format (delimiter, header, encoding)…"),
    "load": (0.05, "Loading the file into DuckDB…"),
    "profile": (0.85, "Profiling the columns…"),
    "save": (0.97, "Saving…"),
}
LOAD_END = 0.85


class Progress:
    """Where processing reports its stages; this one ignores them (the service passes one that writes the job)."""

    def stage(self, name: str) -> None:
        """A new stage starts (a key of STAGES). May raise to stop the processing (cancellation)."""

    def step(self, name: str) -> None:
        """A timed part of the current stage starts ("preview" within "profile"); nothing is shown."""

    def watch(self, con, *, start: float, end: float):
        """A context around one long DuckDB statement: may read `con.query_progress()` meanwhile."""
        return contextlib.nullcontext()


@dataclass
class IngestResult:
    file_format: str
    row_count: int
    columns: list[dict]
    preview: list[dict]
    profile: list[dict]
    detection: dict = field(default_factory=dict)
    seconds: float = 0.0


def _temp_dir() -> str:
    return getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or str(settings.VAR_DIR / "tmp")


def _connect(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    tmp = _temp_dir()
    con = duckdb.connect(
        path,
        config={
            "memory_limit": conf.INGEST_MEMORY_LIMIT,
            "threads": conf.DUCKDB_THREADS,
            "temp_directory": tmp,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    # Progress tracking on (read with con.query_progress() from another thread), never printed.
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    return con


def _csv_to_table(con, *, src: str, encoding: str, decimal_comma: bool) -> None:
    options = [f"encoding={sql_literal(encoding)}", "store_rejects=true", "sample_size=20480", "compression='none'"]
    if decimal_comma:
        options.append("decimal_separator=','")
    con.execute("DROP TABLE IF EXISTS data")
    con.execute(f"CREATE TABLE data AS SELECT * FROM read_csv({sql_literal(src)}, {', '.join(options)})")


def csv_convert(con, *, src: str, progress: Progress | None = None) -> dict:
    """Parse the plain CSV file `src` into the table `data` of `con`; answer what was detected."""
    progress = progress or Progress()
    head = read_head(src)
    if not head.strip():
        raise IngestError("The file is empty (it has no text, only blank lines).")
    encoding = detect_encoding(head)
    try:
        sniffed = sniff(con, src, encoding)
    except duckdb.Error as exc:
        raise IngestError(f"Could not parse the CSV: {short_message(exc)}") from None
    decimal_comma = False
    if sniffed["delimiter"] == ";":
        try:
            comma = sniff(con, src, encoding, ", decimal_separator=','")
            if comma["delimiter"] == ";" and count_numeric(comma["columns"]) > count_numeric(sniffed["columns"]):
                sniffed, decimal_comma = comma, True
        except duckdb.Error:
            pass
    progress.stage("load")
    try:
        with progress.watch(con, start=STAGES["load"][0], end=LOAD_END):
            _csv_to_table(con, src=src, encoding=encoding, decimal_comma=decimal_comma)
    except duckdb.Error as exc:
        message = str(exc)
        if encoding == "utf-8" and "encoded" in message.lower():
            # The first megabyte was UTF-8 but a later line is not: read it as Latin-1.
            encoding = "latin-1"
            try:
                with progress.watch(con, start=STAGES["load"][0], end=LOAD_END):
                    _csv_to_table(con, src=src, encoding=encoding, decimal_comma=decimal_comma)
            except duckdb.Error as exc2:
                raise IngestError(f"Could not parse the CSV: {short_message(exc2)}") from None
        else:
            raise IngestError(f"Could not parse the CSV: {short_message(message)}") from None
    rejected = con.execute("SELECT count(DISTINCT line) FROM reject_errors").fetchone()[0]
    samples = con.execute(
        "SELECT line, error_type, error_message FROM reject_errors ORDER BY line LIMIT 5"
    ).fetchall()
    delimiter = sniffed["delimiter"]
    return {
        "format": "csv",
        "compressed": False,
        "delimiter": {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delimiter, delimiter),
        "delimiter_char": delimiter,
        "quote": None if sniffed["quote"] in ("(empty)", "") else sniffed["quote"],
        "header": sniffed["header"],
        "encoding": encoding,
        "decimal_separator": "," if decimal_comma else ".",
        "rejected_rows": int(rejected or 0),
        "rejected_samples": [
            {"line": int(line) if line is not None else None, "error": str(kind), "message": str(msg)[:300]}
            for line, kind, msg in samples
        ],
    }


def parquet_load(con, *, src: str, progress: Progress | None = None) -> None:
    progress = progress or Progress()
    progress.stage("load")
    try:
        with progress.watch(con, start=STAGES["load"][0], end=LOAD_END):
            con.execute(f"CREATE TABLE data AS SELECT * FROM read_parquet({sql_literal(src)})")
    except duckdb.Error as exc:
        raise IngestError(f"Could not read the Parquet file: {short_message(exc)}") from None


def table_summarize(con, *, detection: dict, file_format: str, started: float,
                    progress: Progress | None = None) -> IngestResult:
    progress = progress or Progress()
    progress.stage("profile")
    columns = describe(con)
    row_count = con.execute("SELECT count(*) FROM data").fetchone()[0]
    if not columns:
        raise IngestError("The file has no columns.")
    if row_count == 0:
        if detection.get("rejected_rows"):
            first = detection["rejected_samples"][0]
            raise IngestError(
                f"Could not parse the CSV: all {detection['rejected_rows']} rows were rejected (first problem "
                f"at line {first['line']}: {first['error'].lower()}, {first['message']})."
            )
        raise IngestError("The file has no data rows (only a header)." if file_format == "csv"
                          else "The file has no rows.")
    # Within the query budgets: long cells cut with a marker, the preview bounded in bytes.
    progress.step("preview")
    preview = rows_read(con, "SELECT * FROM data", max_rows=int(conf.PREVIEW_ROWS), too_large="stop").rows
    progress.step("profile")
    profile = profile_columns(con, columns, row_count)
    try:
        summary = rollup_build(con, columns=columns, profile=profile, row_count=int(row_count))
    except duckdb.Error:  # only a speed-up: the session works without it
        logger.warning("no summary table for this upload", exc_info=True)
        rollup_drop(con)
        summary = None
    if summary:
        detection = {**detection, "rollup": summary}
    return IngestResult(
        file_format=file_format,
        row_count=int(row_count),
        columns=columns,
        preview=preview,
        profile=profile,
        detection=detection,
        seconds=time.monotonic() - started,
    )


def _remove(path: str) -> None:
    for candidate in (path, path + ".wal"):
        if os.path.exists(candidate):
            os.unlink(candidate)


def upload_ingest(*, src: str, filename: str, data_dst: str, progress: Progress | None = None) -> IngestResult:
    """Validate the file at `src` and load it into the DuckDB database file `data_dst` (table `data`).

    The database is written under a temporary name and renamed into place once complete.
    `progress` hears each stage (and may watch the long load); it may raise to stop.
    """
    progress = progress or Progress()
    started = time.monotonic()
    ext = file_extension(filename)
    if ext is None:
        raise IngestError("Unsupported file type: upload a .csv, .csv.gz, .parquet or .pq file.")
    if os.path.getsize(src) == 0:
        raise IngestError("The file is empty.")
    os.makedirs(os.path.dirname(data_dst), exist_ok=True)
    partial = os.path.join(os.path.dirname(data_dst), ".part-" + os.path.basename(data_dst))
    _remove(partial)
    try:
        progress.stage("sniff")
        con = _connect(partial)
        try:
            if ext == ".csv.gz":
                # Decompressed here, within the limit, and parsed as plain CSV (DuckDB would
                # decompress it all, whatever its size).
                fd, plain = tempfile.mkstemp(suffix=".csv", dir=_temp_dir())
                os.close(fd)
                try:
                    gunzip_bounded(src, plain, limit=conf.MAX_DECOMPRESSED_BYTES)
                    detection = csv_convert(con, src=plain, progress=progress)
                finally:
                    os.unlink(plain)
                detection["compressed"] = True
                result = table_summarize(con, detection=detection, file_format="csv", started=started,
                                         progress=progress)
            elif ext in CSV_EXTENSIONS:
                detection = csv_convert(con, src=src, progress=progress)
                result = table_summarize(con, detection=detection, file_format="csv", started=started,
                                         progress=progress)
            else:
                check_parquet_size(con, src=src, limit=conf.MAX_DECOMPRESSED_BYTES)
                parquet_load(con, src=src, progress=progress)
                result = table_summarize(con, detection={"format": "parquet"}, file_format="parquet",
                                         started=started, progress=progress)
            progress.stage("save")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(partial, data_dst)
    finally:
        _remove(partial)
    result.seconds = time.monotonic() - started
    return result
