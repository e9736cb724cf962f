"""Rows read through a cursor in batches (SQLite, or what COPY cannot do) and written as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from contextlib import contextmanager

from django.db import connection

from trades import conf
from trades.selectors import SelectSQL
from trades.writers.pgcopy import ProgressFn, pg_reader


def cursor_csv(*, select: SelectSQL, sink, on_progress: ProgressFn) -> int:
    rows = 0
    text = io.TextIOWrapper(_NonClosing(sink), encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text, lineterminator="\n")
    with row_cursor(select) as cursor:
        while True:
            batch = cursor.fetchmany(conf.EXPORT_BATCH_ROWS)
            if not batch:
                break
            writer.writerows(batch)
            rows += len(batch)
            text.flush()
            on_progress(rows)
    text.flush()
    text.detach()
    return rows


@contextmanager
def row_cursor(select: SelectSQL):
    """A cursor over the SELECT that fetches in batches: a named server-side cursor on
    PostgreSQL (its own connection and transaction), SQLite's stepping cursor elsewhere."""
    if connection.vendor == "postgresql":
        with pg_reader() as raw, raw.transaction():
            with raw.cursor(name=f"trades_export_{uuid.uuid4().hex[:12]}") as cursor:
                cursor.itersize = conf.EXPORT_BATCH_ROWS
                cursor.execute(select.sql, select.params)
                yield cursor
        return
    # SQLite: its own connection too. A reading statement pins a WAL snapshot; a write on
    # that same connection would then fail with "database is locked" as soon as another
    # export has written. (And no transaction.atomic(): IMMEDIATE would take the write lock.)
    import sqlite3

    from trades.expressions import safe_pow

    raw = sqlite3.connect(connection.settings_dict["NAME"], timeout=30, check_same_thread=False)
    try:
        raw.create_function("trades_pow", 2, safe_pow, deterministic=True)
        cursor = raw.execute(select.sql.replace("%s", "?"), select.params)
        yield cursor
    finally:
        raw.close()


class _NonClosing(io.RawIOBase):
    def __init__(self, sink):
        self.sink = sink

    def writable(self):
        return True

    def write(self, data):
        return self.sink.write(bytes(data))
