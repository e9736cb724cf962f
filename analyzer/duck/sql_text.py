"""SQL text: the one table's name, identifiers and string literals quoted for DuckDB."""

from __future__ import annotations

TABLE = "data"
# The summary table a large session gets at load time (analyzer.rollup), readable like `data`.
SUMMARY_TABLE = "data_rollup"
SAMPLE_TABLE = "data_sample"  # and a uniform sample of its rows
SUMMARY_TABLES = (SUMMARY_TABLE, SAMPLE_TABLE)


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"

