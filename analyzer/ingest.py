"""Turning an uploaded CSV/Parquet file into a queryable DuckDB table, its profile and preview.

DuckDB does the work (sniffing, parsing, conversion, statistics) so the
file is streamed from disk and never held whole in memory by Python.
Every upload is loaded once into a DuckDB database file (table `data`): later
queries read DuckDB's compressed columnar storage instead of re-parsing text
(several times faster than Parquet for GROUP BY on text columns).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field

import duckdb
from django.conf import settings

from analyzer import conf
from analyzer.duck import json_safe, quote_ident, rows_read, sql_literal

CSV_EXTENSIONS = (".csv.gz", ".csv")
PARQUET_EXTENSIONS = (".parquet", ".pq")
ALLOWED_EXTENSIONS = CSV_EXTENSIONS + PARQUET_EXTENSIONS
HEAD_BYTES = 1024 * 1024
NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP", "TIME")


class IngestError(Exception):
    """The upload cannot be used; the message is shown to the user as is."""


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


def file_extension(filename: str) -> str | None:
    lower = (filename or "").lower()
    for ext in ALLOWED_EXTENSIONS:
        if lower.endswith(ext):
            return ext
    return None


def is_numeric(type_name: str) -> bool:
    return str(type_name).upper().startswith(NUMERIC_PREFIXES)


def is_temporal(type_name: str) -> bool:
    return str(type_name).upper().startswith(TEMPORAL_PREFIXES)


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


def _first_line(message: str) -> str:
    lines = [line for line in str(message).splitlines() if line.strip()]
    text = " ".join(lines[:6])
    return text[:600]


# --- CSV detection ----------------------------------------------------------------


def _read_head(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


GUNZIP_CHUNK_BYTES = 1024 * 1024


def decompressed_too_large_message() -> str:
    return (f"The file is too large once decompressed: the limit is {conf.MAX_DECOMPRESSED_BYTES:,} bytes of "
            "uncompressed data.")


def gunzip_bounded(src: str, dst: str, *, limit: int) -> int:
    """Decompress the gzip file `src` into `dst`, counting as it goes; answer the decompressed size.

    Stops (IngestError) as soon as more than `limit` bytes came out: a small file that expands to
    gigabytes is never decompressed in full, and `dst` never holds more than `limit` bytes.
    """
    written = 0
    try:
        with gzip.open(src, "rb") as compressed, open(dst, "wb") as out:
            while chunk := compressed.read(min(GUNZIP_CHUNK_BYTES, limit - written + 1)):
                written += len(chunk)
                if written > limit:
                    raise IngestError(decompressed_too_large_message())
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"Could not read the compressed file: {exc}") from None
    return written


def check_parquet_size(con, *, src: str, limit: int) -> int:
    """Refuse a Parquet file whose row groups hold more than `limit` bytes uncompressed (from its metadata)."""
    try:
        total = con.execute(
            f"SELECT coalesce(sum(total_uncompressed_size), 0) FROM parquet_metadata({sql_literal(src)})"
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise IngestError(f"Could not read the Parquet file: {_first_line(exc)}") from None
    if int(total) > limit:
        raise IngestError(
            f"The Parquet file is too large once decompressed: its row groups hold {int(total):,} bytes "
            f"uncompressed; the limit is {limit:,} bytes."
        )
    return int(total)


def _detect_encoding(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        raise IngestError("This does not look like a CSV file: it contains binary data (NUL bytes).")
    sample = head
    for trim in range(4):
        try:
            (sample[: len(sample) - trim] if trim else sample).decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            continue
    text = head.decode("latin-1")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\x0c") + sum(
        1 for ch in text if 0x7F <= ord(ch) <= 0x9F
    )
    if controls > max(8, len(text) // 100):
        raise IngestError("This does not look like a CSV file: it contains binary data.")
    return "latin-1"


def _sniff(con, path: str, encoding: str, extra: str = "") -> dict:
    extra = ", compression='none'" + extra
    row = con.execute(
        "SELECT Delimiter, Quote, HasHeader, Columns FROM sniff_csv("
        f"{sql_literal(path)}, encoding={sql_literal(encoding)}, sample_size=20480, store_rejects=true{extra})"
    ).fetchone()
    delimiter, quote, header, columns = row
    return {"delimiter": delimiter, "quote": quote, "header": bool(header), "columns": columns}


def _count_numeric(columns) -> int:
    return sum(1 for c in columns if is_numeric(c["type"]))


def _csv_to_table(con, *, src: str, encoding: str, decimal_comma: bool) -> None:
    options = [f"encoding={sql_literal(encoding)}", "store_rejects=true", "sample_size=20480", "compression='none'"]
    if decimal_comma:
        options.append("decimal_separator=','")
    con.execute("DROP TABLE IF EXISTS data")
    con.execute(f"CREATE TABLE data AS SELECT * FROM read_csv({sql_literal(src)}, {', '.join(options)})")


def convert_csv(con, *, src: str, progress: Progress | None = None) -> dict:
    """Parse the plain CSV file `src` into the table `data` of `con`; answer what was detected."""
    progress = progress or Progress()
    head = _read_head(src)
    if not head.strip():
        raise IngestError("The file is empty (it has no text, only blank lines).")
    encoding = _detect_encoding(head)
    try:
        sniffed = _sniff(con, src, encoding)
    except duckdb.Error as exc:
        raise IngestError(f"Could not parse the CSV: {_first_line(exc)}") from None
    decimal_comma = False
    if sniffed["delimiter"] == ";":
        try:
            comma = _sniff(con, src, encoding, ", decimal_separator=','")
            if comma["delimiter"] == ";" and _count_numeric(comma["columns"]) > _count_numeric(sniffed["columns"]):
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
                raise IngestError(f"Could not parse the CSV: {_first_line(exc2)}") from None
        else:
            raise IngestError(f"Could not parse the CSV: {_first_line(message)}") from None
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


# --- cheap checks (in the upload request) ---------------------------------------------

MAGIC_HEAD_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


def check_magic(*, path: str, filename: str) -> None:
    """What can be refused without parsing: extension, emptiness, magic bytes, binary data in a CSV.

    Reads at most 64 KB (plus the last 4 bytes of a Parquet file); the full validation is the processing job.
    """
    ext = file_extension(filename)
    if ext is None:
        raise IngestError("Unsupported file type: upload a .csv, .csv.gz, .parquet or .pq file.")
    size = os.path.getsize(path)
    if size == 0:
        raise IngestError("The file is empty.")
    with open(path, "rb") as fh:
        head = fh.read(MAGIC_HEAD_BYTES)
        tail = b""
        if ext in PARQUET_EXTENSIONS and size >= 8:
            fh.seek(size - 4)
            tail = fh.read(4)
    if ext == ".csv.gz":
        if not head.startswith(GZIP_MAGIC):
            raise IngestError("Could not read the compressed file: it is not gzip data.")
    elif ext in PARQUET_EXTENSIONS:
        if not (head.startswith(PARQUET_MAGIC) and tail == PARQUET_MAGIC and size >= 12):
            raise IngestError("Could not read the Parquet file: it does not start and end with the Parquet "
                              "magic bytes (PAR1).")
    else:
        if size <= MAGIC_HEAD_BYTES and not head.strip():
            raise IngestError("The file is empty (it has no text, only blank lines).")
        _detect_encoding(head)  # refuses binary data (NUL bytes, control characters)


# --- profile and preview -----------------------------------------------------------


def _describe(con) -> list[dict]:
    rows = con.execute("DESCRIBE data").fetchall()
    return [{"name": r[0], "type": str(r[1])} for r in rows]


PROFILE_VALUES = 50


def profile_columns(con, columns: list[dict], row_count: int) -> list[dict]:
    """Per column: type, nulls, distinct, min/max/mean or its values (up to 50, most frequent first) — one scan.

    Distinct counts are exact up to conf.PROFILE_EXACT_DISTINCT_ROWS rows, approximate (and marked so) above."""
    exact = row_count <= conf.PROFILE_EXACT_DISTINCT_ROWS
    exprs: list[str] = []
    for i, col in enumerate(columns):
        q = quote_ident(col["name"])
        exprs.append(f"count({q}) AS c{i}_count")
        exprs.append(f"count(DISTINCT {q}) AS c{i}_distinct" if exact else f"approx_count_distinct({q}) AS c{i}_distinct")
        if is_numeric(col["type"]):
            exprs += [f"min({q}) AS c{i}_min", f"max({q}) AS c{i}_max", f"avg({q}) AS c{i}_mean"]
        elif is_temporal(col["type"]):
            exprs += [f"min({q}) AS c{i}_min", f"max({q}) AS c{i}_max"]
        elif col["type"].upper() in ("VARCHAR", "BOOLEAN"):
            exprs.append(f"approx_top_k({q}, {PROFILE_VALUES}) AS c{i}_top")
    if not exprs:
        return []
    cursor = con.execute(f"SELECT {', '.join(exprs)} FROM data")
    names = [d[0] for d in cursor.description]
    values = dict(zip(names, cursor.fetchone()))
    profile = []
    for i, col in enumerate(columns):
        non_null = int(values.get(f"c{i}_count") or 0)
        entry = {
            "name": col["name"],
            "type": col["type"],
            "nulls": row_count - non_null,
            "null_fraction": round((row_count - non_null) / row_count, 4) if row_count else 0.0,
            "distinct": int(values.get(f"c{i}_distinct") or 0),
            "distinct_approximate": not exact,
            "kind": "numeric" if is_numeric(col["type"]) else "temporal" if is_temporal(col["type"]) else "text",
        }
        for key in ("min", "max", "mean"):
            if f"c{i}_{key}" in values:
                entry[key] = json_safe(values[f"c{i}_{key}"])
        if f"c{i}_top" in values:
            top = [json_safe(v) for v in (values[f"c{i}_top"] or [])]
            entry["top_values"] = top[:5]
            if entry["distinct"] <= PROFILE_VALUES and len(top) >= entry["distinct"]:
                entry["values"] = top  # every value: what the built-in analyst matches questions against
        profile.append(entry)
    return profile


def load_parquet(con, *, src: str, progress: Progress | None = None) -> None:
    progress = progress or Progress()
    progress.stage("load")
    try:
        with progress.watch(con, start=STAGES["load"][0], end=LOAD_END):
            con.execute(f"CREATE TABLE data AS SELECT * FROM read_parquet({sql_literal(src)})")
    except duckdb.Error as exc:
        raise IngestError(f"Could not read the Parquet file: {_first_line(exc)}") from None


def summarize_table(con, *, detection: dict, file_format: str, started: float,
                    progress: Progress | None = None) -> IngestResult:
    (progress or Progress()).stage("profile")
    columns = _describe(con)
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
    preview = rows_read(con, "SELECT * FROM data", max_rows=int(conf.PREVIEW_ROWS), too_large="stop").rows
    profile = profile_columns(con, columns, row_count)
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


def ingest(*, src: str, filename: str, data_dst: str, progress: Progress | None = None) -> IngestResult:
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
                    detection = convert_csv(con, src=plain, progress=progress)
                finally:
                    os.unlink(plain)
                detection["compressed"] = True
                result = summarize_table(con, detection=detection, file_format="csv", started=started,
                                         progress=progress)
            elif ext in CSV_EXTENSIONS:
                detection = convert_csv(con, src=src, progress=progress)
                result = summarize_table(con, detection=detection, file_format="csv", started=started,
                                         progress=progress)
            else:
                check_parquet_size(con, src=src, limit=conf.MAX_DECOMPRESSED_BYTES)
                load_parquet(con, src=src, progress=progress)
                result = summarize_table(con, detection={"format": "parquet"}, file_format="parquet",
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
