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

One module per part: `guard` (which statements may run), `execution` (the connection and
running a query), `budgets` (reading the result within its limits), `results`, `values` (DuckDB
values as JSON) and `sql_text` (quoting). Callers use the names below.
"""

from analyzer.duck.budgets import rows_read
from analyzer.duck.execution import message_clean, query_run, sandbox_connect
from analyzer.duck.guard import REFUSED_MESSAGE, references_check, sql_check
from analyzer.duck.results import TRUNCATED_MARKER, QueryFailed, QueryRefused, QueryResult
from analyzer.duck.sql_text import TABLE, quote_ident, sql_literal
from analyzer.duck.values import json_safe, rows_as_dicts, unique_names

__all__ = [
    "REFUSED_MESSAGE", "TABLE", "TRUNCATED_MARKER", "QueryFailed", "QueryRefused", "QueryResult", "json_safe",
    "message_clean", "quote_ident", "references_check", "rows_as_dicts", "rows_read", "query_run", "sandbox_connect",
    "sql_check", "sql_literal", "unique_names",
]
