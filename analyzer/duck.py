"""DuckDB for untrusted SQL: a locked-down connection over one session's own database file.

The model's (or user's) SQL is hostile. Each query gets a fresh in-memory
connection whose only table is the view `data` over the session's own DuckDB
file (attached read-only);
external access is disabled except that file (`allowed_paths`), the
configuration is locked, memory and threads are capped, a timer interrupts
long queries, and only a single SELECT/WITH statement is accepted (checked by
DuckDB's own parser, not by pattern matching).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import threading
import time
import uuid
from dataclasses import dataclass, field

import duckdb

from analyzer import conf

TABLE = "data"


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


def sql_check(sql: str, *, con=None) -> str:
    """The single SELECT/WITH statement in `sql`, or QueryRefused with a clear reason."""
    text = (sql or "").strip()
    if not text:
        raise QueryRefused("The query is empty.")
    if len(text) > 20_000:
        raise QueryRefused("The query is too long (over 20,000 characters).")
    parser = con or duckdb.connect(":memory:")
    try:
        statements = parser.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryFailed(f"SQL syntax error: {exc}") from None
    finally:
        if con is None:
            parser.close()
    if len(statements) != 1:
        raise QueryRefused(f"Only a single statement is allowed; got {len(statements)}.")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = str(statement.type).split(".")[-1]
        raise QueryRefused(f"Only SELECT (or WITH … SELECT) queries are allowed; this is a {kind} statement.")
    return statement.query.strip().rstrip(";").strip()


def _explain_permission(exc: Exception) -> str:
    message = str(exc)
    if "Permission" in type(exc).__name__ or "disabled by configuration" in message:
        return (
            "Refused: queries may only read the table `data` (the uploaded file); reading or writing other "
            f"files, attaching databases, installing extensions and changing settings are not allowed. ({message.splitlines()[0]})"
        )
    if "configuration has been locked" in message:
        return "Refused: settings cannot be changed."
    return message


def run_query(
    *, data_path: str, sql: str, max_rows: int | None = None, timeout: float | None = None, cancel_check=None
) -> QueryResult:
    """Run one untrusted SELECT over the session's file, capped in rows, memory and time.

    `cancel_check()` is polled while the query runs; when it returns True the
    query is interrupted (used for "stop" from the user).
    """
    max_rows = conf.RESULT_ROWS_KEPT if max_rows is None else max_rows
    timeout = conf.QUERY_TIMEOUT_SECONDS if timeout is None else timeout
    con = sandbox_connect(data_path=data_path)
    try:
        statement = sql_check(sql, con=con)
        finished = threading.Event()
        reason: dict[str, str] = {}

        def watchdog():
            deadline = time.monotonic() + timeout
            while not finished.wait(0.1):
                if time.monotonic() > deadline:
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

        guard = threading.Thread(target=watchdog, daemon=True)
        started = time.monotonic()
        guard.start()
        try:
            # A newline before the closing parenthesis so a trailing `-- comment` cannot swallow it.
            cursor = con.execute(f"SELECT * FROM (\n{statement}\n) AS q LIMIT {int(max_rows) + 1}")
            names = unique_names([d[0] for d in cursor.description])
            types = [str(d[1]) for d in cursor.description]
            raw = cursor.fetchall()
        except duckdb.Error as exc:
            if reason.get("why"):
                raise QueryFailed(reason["why"]) from None
            raise QueryFailed(_explain_permission(exc)) from None
        finally:
            finished.set()
            guard.join(timeout=1)
        seconds = time.monotonic() - started
        truncated = len(raw) > max_rows
        raw = raw[:max_rows]
        return QueryResult(
            columns=[{"name": n, "type": t} for n, t in zip(names, types)],
            rows=rows_as_dicts(names, raw),
            truncated=truncated,
            seconds=seconds,
            sql=statement,
        )
    finally:
        con.close()
