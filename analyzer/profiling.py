"""The profile of a loaded table: each column's kind, nulls, distinct values and range or top values."""

from __future__ import annotations

from analyzer import conf
from analyzer.duck import json_safe, quote_ident

NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP", "TIME")


def is_numeric(type_name: str) -> bool:
    return str(type_name).upper().startswith(NUMERIC_PREFIXES)


def is_temporal(type_name: str) -> bool:
    return str(type_name).upper().startswith(TEMPORAL_PREFIXES)


def describe(con) -> list[dict]:
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
