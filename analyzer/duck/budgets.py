"""Reading a result within its budgets: cells cut by DuckDB, rows fetched in pieces, bytes counted.

DuckDB itself cuts every long value to `RESULT_CELL_CHARS` and reports its full size,
the rows are fetched in pieces, a result whose full values pass `RESULT_MAX_BYTES`
ends with "Result too large", and the rows kept stop at `RESULT_STORED_BYTES` of JSON.
"""

from __future__ import annotations

import json

from analyzer import conf
from analyzer.duck.results import TRUNCATED_MARKER, QueryFailed, QueryResult
from analyzer.duck.values import json_safe, unique_names

MAX_COLUMNS = 2_000
# Bytes of (already cut) values fetched at a time.
PIECE_BYTES = 4 * 1024**2
# Value types of a fixed, small size: fetched as they are. Everything else is cut by DuckDB.
FIXED_TYPES = frozenset({
    "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
    "ubigint", "uhugeint", "float", "double", "decimal", "date", "time", "time_ns", "timestamp", "timestamp_s",
    "timestamp_ms", "timestamp_ns", "timestamp with time zone", "time with time zone", "interval", "uuid",
})
NESTED_TYPES = frozenset({"list", "struct", "map", "array", "union"})


def _reader_sql(statement: str, types: list, *, cell_chars: int, max_rows: int) -> tuple[str, list[str]]:
    """The query that reads `statement`'s first rows with every long value cut by DuckDB itself.

    Answers (sql, how each column comes back: "fixed", "text" or "json"). A "text"/"json" column is
    followed by its full size in bytes, so Python never holds a value longer than `cell_chars` + 1.
    """
    select, kinds = [], []
    for i, kind_type in enumerate(types):
        column = f'q."c{i}"'
        kind = str(getattr(kind_type, "id", "") or "").lower()
        if kind in FIXED_TYPES:
            select.append(column)
            kinds.append("fixed")
            continue
        if kind == "varchar":
            text, size = column, f"strlen({column})"
        elif kind == "blob":
            text, size = f"hex({column})", f"2 * octet_length({column})"
        elif kind in NESTED_TYPES:
            text = f"CAST(to_json({column}) AS VARCHAR)"
            size = f"strlen({text})"
        else:
            text = f"CAST({column} AS VARCHAR)"
            size = f"strlen({text})"
        select += [f"left({text}, {int(cell_chars) + 1})", f"coalesce({size}, 0)"]
        kinds.append("json" if kind in NESTED_TYPES else "text")
    aliases = ", ".join(f'"c{i}"' for i in range(len(types)))
    # A newline before the closing parenthesis so a trailing `-- comment` cannot swallow it.
    sql = (f"SELECT {', '.join(select)} FROM (SELECT * FROM (\n{statement}\n) LIMIT {int(max_rows) + 1}) "
           f"AS q({aliases})")
    return sql, kinds


def _cut(value: str, size: int, cell_chars: int) -> str:
    return f"{value[:cell_chars]}{TRUNCATED_MARKER}: {size:,} bytes in all]"


def _megabytes(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB"


def rows_read(con, statement: str, *, max_rows: int, between_pieces=lambda: None,
              too_large: str = "fail") -> QueryResult:
    """The first `max_rows` rows of `statement` within the result budgets (see the module docstring).

    Past RESULT_MAX_BYTES: QueryFailed("Result too large …") with `too_large="fail"`, or the rows read so far
    (marked truncated) with "stop". `between_pieces()` runs before each fetch (it raises to stop).
    """
    cell_chars = max(1, conf.RESULT_CELL_CHARS)
    relation = con.sql(f"SELECT * FROM (\n{statement}\n) AS q")
    names = unique_names(relation.columns)
    types = list(relation.types)
    if len(names) > MAX_COLUMNS:
        raise QueryFailed(f"The result has {len(names):,} columns; at most {MAX_COLUMNS:,} are allowed.")
    reader, kinds = _reader_sql(statement, types, cell_chars=cell_chars, max_rows=max_rows)
    cursor = con.execute(reader)
    variable = sum(1 for k in kinds if k != "fixed")
    piece = max(1, min(1000, PIECE_BYTES // (variable * (cell_chars + 1) + 16 * len(kinds) + 1)))
    rows: list[dict] = []
    full_bytes = stored_bytes = cut = 0
    truncated = False
    while not truncated:
        between_pieces()
        chunk = cursor.fetchmany(piece)
        if not chunk:
            break
        for raw in chunk:
            if len(rows) >= max_rows:
                truncated = True
                break
            row, at, row_cut = {}, 0, 0
            for name, kind in zip(names, kinds):
                value = raw[at]
                if kind == "fixed":
                    at += 1
                    full_bytes += 16
                    row[name] = json_safe(value)
                    continue
                size = int(raw[at + 1] or 0)
                at += 2
                full_bytes += size
                if value is not None and len(value) > cell_chars:
                    value = _cut(value, size, cell_chars)
                    row_cut += 1
                elif value is not None and kind == "json":
                    value = json.loads(value)
                row[name] = json_safe(value)
            if full_bytes > conf.RESULT_MAX_BYTES:
                if too_large == "stop":
                    truncated = True
                    break
                raise QueryFailed(
                    f"Result too large: its first {len(rows) + 1:,} rows already hold "
                    f"{_megabytes(full_bytes)} (the limit is {_megabytes(conf.RESULT_MAX_BYTES)}). "
                    "Select fewer or shorter columns, aggregate, or add a LIMIT."
                )
            stored_bytes += len(json.dumps(row, default=str)) + 2  # as stored in a JSON list
            if stored_bytes > conf.RESULT_STORED_BYTES:
                truncated = True
                break
            rows.append(row)
            cut += row_cut
    return QueryResult(columns=[{"name": n, "type": str(t)} for n, t in zip(names, types)], rows=rows,
                       truncated=truncated, seconds=0.0, sql=statement, cells_truncated=cut)

