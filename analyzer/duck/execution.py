"""Running one untrusted query: the locked-down connection, the time limit and stop, clean messages."""

from __future__ import annotations

import os
import re
import threading
import time

import duckdb

from analyzer import conf
from analyzer.duck.budgets import rows_read
from analyzer.duck.guard import REFUSED_MESSAGE, sql_check
from analyzer.duck.results import QueryFailed, QueryResult
from analyzer.duck.sql_text import TABLE, sql_literal


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


def query_run(
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
