"""OHLCV CSV parsing: a generic headed CSV and Binance kline dumps.

Both give a frame with columns open_time (UTC datetime), open, high, low,
close, volume, sorted and de-duplicated, plus a report of what was dropped.
Nothing in a file is evaluated; bad rows are counted and skipped.
"""

from __future__ import annotations

import io
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


def parse_ohlcv_csv(data: bytes | str, *, fmt: str = "auto") -> tuple[pd.DataFrame, ParseReport]:
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    text = text.lstrip("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise ImportFormatError("The file is empty.")
    if fmt == "auto":
        fmt = "binance" if _looks_binance(first) else "generic"
    if fmt == "binance":
        has_header = not first.split(",")[0].strip().lstrip("-").replace(".", "").isdigit()
        frame = pd.read_csv(io.StringIO(text), header=0 if has_header else None, dtype=str, skip_blank_lines=True)
        if frame.shape[1] != 12:
            raise ImportFormatError(f"A Binance kline file has 12 columns; this one has {frame.shape[1]}.")
        frame.columns = BINANCE_COLUMNS
        times, unit = _epoch_to_datetime(frame["open_time"])
    elif fmt == "generic":
        frame = pd.read_csv(io.StringIO(text), dtype=str, skip_blank_lines=True)
        frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
        time_col = next((c for c in TIME_ALIASES if c in frame.columns), None)
        missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
        if time_col is None or missing:
            need = "a time column (" + "/".join(TIME_ALIASES) + ")" if time_col is None else ", ".join(missing)
            raise ImportFormatError(f"The CSV header must name {need}; found: {', '.join(frame.columns)}.")
        raw = frame[time_col].astype(str).str.strip()
        if pd.to_numeric(raw, errors="coerce").notna().all():
            times, unit = _epoch_to_datetime(raw)
        else:
            times, unit = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed"), "iso"
        if "volume" not in frame.columns:
            frame["volume"] = "0"
    else:
        raise ImportFormatError(f"Unknown format {fmt!r}: use auto, generic or binance.")

    out = pd.DataFrame({"open_time": times})
    for col in PRICE_COLUMNS + ["volume"]:
        out[col] = pd.to_numeric(frame[col], errors="coerce")
    report = ParseReport(format=fmt, time_unit=unit)
    header_lines = 1 if fmt == "generic" or (fmt == "binance" and frame is not None and not first[:1].isdigit()) else 0
    bad = out.isna().any(axis=1) | (out[PRICE_COLUMNS] <= 0).any(axis=1)
    bad |= out["high"] < out[["open", "close", "low"]].max(axis=1)
    bad |= out["low"] > out[["open", "close", "high"]].min(axis=1)
    bad |= out["volume"] < 0
    report.invalid = int(bad.sum())
    report.invalid_lines = [int(i) + 1 + header_lines for i in np.flatnonzero(bad.to_numpy())[:20]]
    out = out[~bad]
    before = len(out)
    out = out.drop_duplicates("open_time", keep="last").sort_values("open_time").reset_index(drop=True)
    report.duplicates = before - len(out)
    report.rows = len(out)
    return out, report
