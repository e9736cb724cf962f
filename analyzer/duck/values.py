"""DuckDB values as JSON: the cells, column names and rows a result is stored and shown as."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid


def json_safe(value):
    """A DuckDB value as something json.dumps and Vega-Lite accept."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def unique_names(names: list[str]) -> list[str]:
    """Result column names made unique (`count`, `count_2`) so rows can be dicts."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = str(name)
        if name in seen:
            seen[name] += 1
            candidate = f"{name}_{seen[name]}"
            while candidate in seen:
                seen[name] += 1
                candidate = f"{name}_{seen[name]}"
            name = candidate
        seen.setdefault(name, 1)
        out.append(name)
    return out


def rows_as_dicts(names: list[str], rows: list[tuple]) -> list[dict]:
    return [{n: json_safe(v) for n, v in zip(names, row)} for row in rows]

