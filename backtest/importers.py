"""OHLCV CSV parsing: a generic headed CSV and Binance kline dumps.

Both give a frame with columns open_time (UTC datetime), open, high, low,
close, volume, sorted and de-duplicated, plus a report of what was dropped.
Nothing in a file is evaluated; bad rows are counted and skipped.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BINANCE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades", "taker_buy_base", "taker_buy_quote", "ignore",
]
TIME_ALIASES = ("open_time", "time", "timestamp", "datetime", "date", "opentime")
PRICE_COLUMNS = ["open", "high", "low", "close"]


class ImportFormatError(ValueError):
    """The file is not an OHLCV CSV we understand."""


@dataclass
class ParseReport:
    format: str
    rows: int = 0
    duplicates: int = 0
    invalid: int = 0
    invalid_lines: list[int] = field(default_factory=list)
    time_unit: str = ""
    #: Why rows were invalid: unreadable time, unreadable/missing number, non-positive price,
    #: high/low not spanning open and close, negative volume (a row may count in several).
    invalid_reasons: dict[str, int] = field(default_factory=dict)


def epoch_unit(values: np.ndarray) -> str:
    """Seconds, milliseconds or microseconds, from the magnitude (Binance moved to µs in 2025 dumps)."""
    top = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    if top >= 1e14:
        return "us"
    if top >= 1e11:
        return "ms"
    return "s"


def _epoch_to_datetime(values: pd.Series) -> tuple[pd.Series, str]:
    numbers = pd.to_numeric(values, errors="coerce")
    unit = epoch_unit(numbers.dropna().to_numpy())
    return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce"), unit


def _looks_binance(first_line: str) -> bool:
    parts = [p.strip() for p in first_line.split(",")]
    if len(parts) != 12:
        return False
    try:
        [float(p) for p in parts[:6]]
    except ValueError:
        return parts[0].lower() in ("open_time", "opentime")  # newer dumps carry a header
    return True


SNIFF_BYTES = 64 * 1024


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def sniff_text(head: bytes) -> None:
    """Reject what is plainly not a text CSV, from its first bytes, with what to do instead."""
    if not head.strip():
        raise ImportFormatError("The file is empty.")
    if head.startswith(b"PK\x03\x04"):
        raise ImportFormatError("This is a ZIP archive (or an Excel .xlsx workbook): unzip it, or save the sheet "
                                "as CSV (comma-separated), and upload the .csv file.")
    if head.startswith(b"\x1f\x8b"):
        raise ImportFormatError("This is a gzip-compressed file: decompress it and upload the .csv inside.")
    if b"\x00" in head:
        raise ImportFormatError("This is a binary file, not a CSV: export the data as comma-separated text "
                                "with a header line (or a Binance kline CSV).")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise ImportFormatError("The file is not UTF-8 text: save it as a CSV in UTF-8.") from None


def parse_ohlcv_file(path: str | os.PathLike, *, fmt: str = "auto") -> tuple[pd.DataFrame, ParseReport]:
    """Like `parse_ohlcv_csv`, reading from a file on disk (pandas reads it in blocks)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    sniff_text(head)
    text = head.decode("utf-8-sig", errors="replace")
    # the sample may end inside a line; only its first complete line is needed
    return _parse(path, _first_line(text), fmt=fmt)


def check_ohlcv_file(source, *, fmt: str = "auto") -> str:
    """Cheap check of an upload before it is queued: its first 64 KiB must be a text CSV with the
    columns of a format; returns the format. `source` is a path or a file object."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(SNIFF_BYTES + 1)
    else:
        source.seek(0)
        head = source.read(SNIFF_BYTES + 1)
        source.seek(0)
    whole = len(head) <= SNIFF_BYTES
    head = head[:SNIFF_BYTES]
    sniff_text(head)
    text = head.decode("utf-8-sig", errors="replace")
    if not whole:  # drop the line the sample cut
        text = text[: text.rfind("\n") + 1] if "\n" in text else text
    try:
        _, report = _parse(io.StringIO(text), _first_line(text), fmt=fmt)
    except ImportFormatError as exc:
        if not whole and str(exc).startswith("No row could be imported"):
            return "binance" if fmt == "auto" and _looks_binance(_first_line(text)) else (fmt if fmt != "auto" else "generic")
        raise
    return report.format


def parse_ohlcv_csv(data: bytes | str, *, fmt: str = "auto") -> tuple[pd.DataFrame, ParseReport]:
    if isinstance(data, bytes):
        sniff_text(data[:SNIFF_BYTES])
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    text = text.lstrip("\ufeff")
    return _parse(io.StringIO(text), _first_line(text), fmt=fmt)


def _read_csv(source, **kwargs) -> pd.DataFrame:
    if isinstance(source, io.StringIO):
        source.seek(0)
    try:
        frame = pd.read_csv(source, dtype=str, skip_blank_lines=True, encoding="utf-8-sig",
                            encoding_errors="replace", **kwargs)
        if not isinstance(frame.index, pd.RangeIndex):  # pandas turns surplus leading fields into an index
            raise ImportFormatError(
                f"The data rows have {frame.index.nlevels + frame.shape[1]} fields but the header names "
                f"{frame.shape[1]}: every line must have as many comma-separated values as the header "
                "(the same number of fields)."
            )
        return frame
    except pd.errors.EmptyDataError:
        raise ImportFormatError("The file is empty.") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise ImportFormatError(
            f"The rows do not all have the same number of fields ({detail}): every line must have as many "
            "comma-separated values as the header."
        ) from None


def _parse(source, first: str, *, fmt: str) -> tuple[pd.DataFrame, ParseReport]:
    first = first.lstrip("\ufeff")
    if not first:
        raise ImportFormatError("The file is empty.")
    if fmt == "auto":
        fmt = "binance" if _looks_binance(first) else "generic"
    if fmt == "binance":
        has_header = not first.split(",")[0].strip().lstrip("-").replace(".", "").isdigit()
        frame = _read_csv(source, header=0 if has_header else None)
        if frame.shape[1] != 12:
            raise ImportFormatError(f"A Binance kline file has 12 columns; this one has {frame.shape[1]}.")
        frame.columns = BINANCE_COLUMNS
        times, unit = _epoch_to_datetime(frame["open_time"])
    elif fmt == "generic":
        frame = _read_csv(source)
        frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
        time_col = next((c for c in TIME_ALIASES if c in frame.columns), None)
        missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
        if len(frame.columns) == 1 and ";" in str(frame.columns[0]):
            raise ImportFormatError("The file is separated by semicolons; save it with commas as separators "
                                    "(and dots as decimal separators).")
        if time_col is None or missing:
            need = "a time column (" + "/".join(TIME_ALIASES) + ")" if time_col is None else ", ".join(missing)
            raise ImportFormatError(f"The CSV header must name {need}; found: {', '.join(frame.columns)}.")
        raw = frame[time_col].astype(str).str.strip()
        if len(raw) and pd.to_numeric(raw, errors="coerce").notna().all():
            times, unit = _epoch_to_datetime(raw)
        else:
            times, unit = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed"), "iso"
        if "volume" not in frame.columns:
            frame["volume"] = "0"
    else:
        raise ImportFormatError(f"Unknown format {fmt!r}: use auto, generic or binance.")
    if frame.empty:
        raise ImportFormatError("The file has no data rows, only a header.")

    out = pd.DataFrame({"open_time": times})
    for col in PRICE_COLUMNS + ["volume"]:
        out[col] = pd.to_numeric(frame[col], errors="coerce")
    report = ParseReport(format=fmt, time_unit=unit)
    header_lines = 1 if fmt == "generic" or (fmt == "binance" and frame is not None and not first[:1].isdigit()) else 0
    reasons = {
        "time": out["open_time"].isna(),
        "number": out[PRICE_COLUMNS + ["volume"]].isna().any(axis=1),
        "non_positive": (out[PRICE_COLUMNS] <= 0).any(axis=1),
        "high_low": (out["high"] < out[["open", "close", "low"]].max(axis=1))
        | (out["low"] > out[["open", "close", "high"]].min(axis=1)),
        "negative_volume": out["volume"] < 0,
    }
    bad = reasons["time"].copy()
    for mask in reasons.values():
        bad |= mask
    report.invalid = int(bad.sum())
    report.invalid_reasons = {k: int(v.sum()) for k, v in reasons.items() if v.any()}
    report.invalid_lines = [int(i) + 1 + header_lines for i in np.flatnonzero(bad.to_numpy())[:20]]
    if report.invalid and report.invalid == len(out):
        raise ImportFormatError(f"No row could be imported: {describe_invalid(report)}")
    out = out[~bad]
    before = len(out)
    out = out.drop_duplicates("open_time", keep="last").sort_values("open_time").reset_index(drop=True)
    report.duplicates = before - len(out)
    report.rows = len(out)
    return out, report


_REASONS = {
    "time": "the time could not be read (use ISO 8601 like 2024-01-01T00:00:00Z, or epoch seconds, ms or µs)",
    "number": "a price or volume is missing or not a number (use a dot as decimal separator, no thousands separators)",
    "non_positive": "a price is zero or negative",
    "high_low": "high is below open/close/low or low above open/close/high",
    "negative_volume": "the volume is negative",
}


def describe_invalid(report: ParseReport) -> str:
    """What is wrong with the invalid rows, in words, with the first line numbers."""
    parts = [f"{count:,} row{'s' if count != 1 else ''}: {_REASONS[key]}"
             for key, count in report.invalid_reasons.items()]
    lines = ", ".join(str(n) for n in report.invalid_lines[:10])
    more = "…" if report.invalid > 10 else ""
    return "; ".join(parts) + (f" (first lines: {lines}{more})." if lines else ".")
