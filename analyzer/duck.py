"""DuckDB for untrusted SQL: a locked-down connection over one session's own database file.

The model's (or user's) SQL is hostile. Each query gets a fresh in-memory
connection whose only table is the view `data` over the session's own DuckDB
file (attached read-only);
external access is disabled except that file (`allowed_paths`), the
configuration is locked, memory and threads are capped, a timer interrupts
long queries, and only a single SELECT/WITH statement is accepted (checked by
DuckDB's own parser, not by pattern matching). The statement's syntax tree
(`json_serialize_sql`) may name no table but `data` and its own CTEs, only a
few generating table functions, and no function that reads settings or the
catalog (which would show host paths).

The result is read within budgets: DuckDB itself cuts every long value to
`RESULT_CELL_CHARS` and reports its full size, the rows are fetched in pieces,
a result whose full values pass `RESULT_MAX_BYTES` ends with "Result too
large", and the rows kept stop at `RESULT_STORED_BYTES` of JSON. Error
messages are cleaned of host paths.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

import duckdb

from analyzer import conf

TABLE = "data"
TRUNCATED_MARKER = "… [truncated"
# Table functions a query may use: they generate rows, they read nothing.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})
# Functions that read settings, variables, the environment or the catalog, or write the log.
REFUSED_FUNCTIONS = frozenset({
    "current_setting", "getenv", "getvariable", "write_log", "current_query", "json_execute_serialized_sql",
    "query", "query_table",
})
REFUSED_FUNCTION_PREFIXES = ("duckdb_", "pragma_", "pg_get_")
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
REFUSED_MESSAGE = (
    "Refused: queries may only read the table `data` (the uploaded file); reading or writing other files, "
    "attaching databases, installing extensions, reading settings or the catalog and changing settings are not "
    "allowed."
)


class QueryRefused(Exception):
    """The statement is not allowed (not a single SELECT, touches other files, …)."""


class QueryFailed(Exception):
    """DuckDB could not run the query (syntax, unknown column, time limit, …)."""


@dataclass
class QueryResult:
    columns: list[dict]
    rows: list[dict]
    truncated: bool
    seconds: float
    sql: str = ""
    extra: dict = field(default_factory=dict)
    # Cells cut to RESULT_CELL_CHARS (each ends with TRUNCATED_MARKER).
    cells_truncated: int = 0


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


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


def sandbox_connect(*, data_path: str, memory_limit: str | None = None, threads: int | None = None):
    """An in-memory DuckDB connection whose only reachable file is the session's database `data_path`
    (attached read-only), its table exposed as the view `data`."""
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": memory_limit or conf.DUCKDB_MEMORY_LIMIT,
            "threads": threads or conf.DUCKDB_THREADS,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            # No Python objects of the worker reachable by name (`SELECT * FROM some_variable`).
            "python_enable_replacements": False,
        },
    )
    try:
        con.execute(f"ATTACH {sql_literal(data_path)} AS src (READ_ONLY)")
        con.execute(f"CREATE VIEW {TABLE} AS SELECT * FROM src.{TABLE}")
        con.execute(f"SET allowed_paths = [{sql_literal(data_path)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except Exception:
        con.close()
        raise
    return con


@functools.lru_cache(maxsize=1)
def _catalog_names() -> frozenset[str]:
    """Names of DuckDB's own views and tables (`duckdb_databases`, `pg_settings`, …): no CTE may take them."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute("SELECT view_name FROM duckdb_views() UNION SELECT table_name FROM duckdb_tables()")
        return frozenset(str(name).lower() for (name,) in rows.fetchall())
    finally:
        con.close()


def _tree_names(node, found: dict) -> None:
    """Collect the tables, table functions, functions and CTE names of a serialized statement."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            found["tables"].append((str(node.get("catalog_name") or ""), str(node.get("schema_name") or ""),
                                    str(node.get("table_name") or "")))
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            found["table_functions"].append(str(function.get("function_name") or ""))
        if node.get("class") == "FUNCTION" and "function_name" in node:
            found["functions"].append(str(node.get("function_name") or ""))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                if isinstance(entry, dict):
                    found["ctes"].append(str(entry.get("key") or ""))
        for value in node.values():
            _tree_names(value, found)
    elif isinstance(node, list):
        for value in node:
            _tree_names(value, found)


def references_check(text: str, *, con) -> None:
    """QueryRefused unless the statement reads only `data` (and its own CTEs) and calls no refused function."""
    try:
        raw = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]
        tree = json.loads(raw)
    except (duckdb.Error, TypeError, ValueError):
        raise QueryRefused("The query could not be checked; write a plain SELECT over `data`.") from None
    if tree.get("error"):
        raise QueryRefused("The query could not be checked; write a plain SELECT over `data`.")
    found: dict[str, list] = {"tables": [], "table_functions": [], "functions": [], "ctes": []}
    _tree_names(tree.get("statements"), found)
    ctes = {name.lower() for name in found["ctes"]}
    if ctes & _catalog_names():
        raise QueryRefused(REFUSED_MESSAGE)
    for catalog, schema, name in found["tables"]:
        if catalog or schema or name.lower() not in ctes | {TABLE}:
            raise QueryRefused(REFUSED_MESSAGE)
    for name in found["table_functions"]:
        if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
            raise QueryRefused(REFUSED_MESSAGE)
    for name in found["functions"]:
        lowered = name.lower()
        if lowered in REFUSED_FUNCTIONS or lowered.startswith(REFUSED_FUNCTION_PREFIXES):
            raise QueryRefused(REFUSED_MESSAGE)


def sql_check(sql: str, *, con=None) -> str:
    """The single SELECT/WITH statement in `sql`, or QueryRefused with a clear reason."""
    text = (sql or "").strip()
    if not text:
        raise QueryRefused("The query is empty.")
    if len(text) > 20_000:
        raise QueryRefused("The query is too long (over 20,000 characters).")
    parser = con or duckdb.connect(":memory:")
    try:
        try:
            statements = parser.extract_statements(text)
        except duckdb.Error as exc:
            raise QueryFailed(f"SQL syntax error: {exc}") from None
        if len(statements) != 1:
            raise QueryRefused(f"Only a single statement is allowed; got {len(statements)}.")
        statement = statements[0]
        if statement.type != duckdb.StatementType.SELECT:
            kind = str(statement.type).split(".")[-1]
            raise QueryRefused(f"Only SELECT (or WITH … SELECT) queries are allowed; this is a {kind} statement.")
        query = statement.query.strip().rstrip(";").strip()
        references_check(query, con=parser)
        return query
    finally:
        if con is None:
            parser.close()


_PATH = re.compile(r"(?<![\w.])/(?:[\w.@+-]+/)+[\w.@+-]*")


def message_clean(message: str, *, data_path: str = "") -> str:
    """A DuckDB message fit for the user: no host paths (the session's file becomes `data`)."""
    text = str(message)
    if data_path:
        for path in sorted({data_path, os.path.dirname(data_path)}, key=len, reverse=True):
            if path:
                text = text.replace(path, TABLE)
    text = _PATH.sub("…", text)
    return text[:2000]


def _explain_permission(exc: Exception, *, data_path: str = "") -> str:
    message = message_clean(str(exc), data_path=data_path)
    if "Permission" in type(exc).__name__ or "disabled by configuration" in message:
        return f"{REFUSED_MESSAGE} ({message.splitlines()[0]})"
    if "configuration has been locked" in message:
        return "Refused: settings cannot be changed."
    return message


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


def run_query(
    *, data_path: str, sql: str, max_rows: int | None = None, timeout: float | None = None, cancel_check=None,
    con=None,
) -> QueryResult:
    """Run one untrusted SELECT over the session's file, capped in rows, bytes, memory and time.

    `cancel_check()` is polled while the query runs; when it returns True the
    query is interrupted (used for "stop" from the user). `con` is a connection from sandbox_connect for
    this same file, kept by the caller for several queries (opening one costs about 0.1 s); without it the
    query opens and closes its own.
    """
    max_rows = conf.RESULT_ROWS_KEPT if max_rows is None else max_rows
    timeout = conf.QUERY_TIMEOUT_SECONDS if timeout is None else timeout
    own = con is None
    con = sandbox_connect(data_path=data_path) if own else con
    try:
        statement = sql_check(sql, con=con)
        finished = threading.Event()
        reason: dict[str, str] = {}

        def watchdog():
            deadline = time.monotonic() + timeout
            while not finished.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    reason["why"] = f"The query took longer than {timeout:g} s and was stopped."
                    con.interrupt()
                    return
                if cancel_check is not None:
                    try:
                        if cancel_check():
                            reason["why"] = "The query was stopped."
                            con.interrupt()
                            return
                    except Exception:
                        pass

        def stopped() -> None:
            if reason.get("why"):
                raise QueryFailed(reason["why"])

        guard = threading.Thread(target=watchdog, daemon=True, name="analyzer-query-watchdog")
        started = time.monotonic()
        guard.start()
        try:
            read = rows_read(con, statement, max_rows=max_rows, between_pieces=stopped)
            stopped()
        except duckdb.Error as exc:
            stopped()
            raise QueryFailed(_explain_permission(exc, data_path=data_path)) from None
        finally:
            finished.set()
            guard.join(timeout=1)
        return QueryResult(
            columns=read.columns,
            rows=read.rows,
            truncated=read.truncated,
            seconds=time.monotonic() - started,
            sql=statement,
            cells_truncated=read.cells_truncated,
        )
    finally:
        if own:
            con.close()
