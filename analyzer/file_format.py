"""What an uploaded file is, and what can be refused about it before or while it is loaded.

The extension, the magic bytes and binary data (the cheap checks of the upload request), the text
encoding and CSV dialect (DuckDB's sniffer), and the bounds on what a compressed file expands to.
"""

from __future__ import annotations

import gzip
import os
import zlib

import duckdb

from analyzer import conf
from analyzer.duck import sql_literal
from analyzer.profiling import is_numeric

CSV_EXTENSIONS = (".csv.gz", ".csv")
PARQUET_EXTENSIONS = (".parquet", ".pq")
ALLOWED_EXTENSIONS = CSV_EXTENSIONS + PARQUET_EXTENSIONS
HEAD_BYTES = 1024 * 1024


class IngestError(Exception):
    """The upload cannot be used; the message is shown to the user as is."""


def file_extension(filename: str) -> str | None:
    lower = (filename or "").lower()
    for ext in ALLOWED_EXTENSIONS:
        if lower.endswith(ext):
            return ext
    return None


def short_message(message: str) -> str:
    """A DuckDB error message cut short for the user: its first non-blank lines, on one line."""
    lines = [line for line in str(message).splitlines() if line.strip()]
    text = " ".join(lines[:6])
    return text[:600]


def read_head(path: str) -> bytes:
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
        raise IngestError(f"Could not read the Parquet file: {short_message(exc)}") from None
    if int(total) > limit:
        raise IngestError(
            f"The Parquet file is too large once decompressed: its row groups hold {int(total):,} bytes "
            f"uncompressed; the limit is {limit:,} bytes."
        )
    return int(total)


def detect_encoding(head: bytes) -> str:
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


def sniff(con, path: str, encoding: str, extra: str = "") -> dict:
    extra = ", compression='none'" + extra
    row = con.execute(
        "SELECT Delimiter, Quote, HasHeader, Columns FROM sniff_csv("
        f"{sql_literal(path)}, encoding={sql_literal(encoding)}, sample_size=20480, store_rejects=true{extra})"
    ).fetchone()
    delimiter, quote, header, columns = row
    return {"delimiter": delimiter, "quote": quote, "header": bool(header), "columns": columns}


def count_numeric(columns) -> int:
    return sum(1 for c in columns if is_numeric(c["type"]))


# The cheap checks of the upload request.

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
        detect_encoding(head)  # refuses binary data (NUL bytes, control characters)
